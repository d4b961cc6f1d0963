"""fuse_silu_mul (stage post_load_fusion, after fuse_gemms).

Replaces: the SwiGLU FFN's activation as ``fuse_gemms`` leaves it — ``y = linear(x, W_gate_up)``,
    ``g, u = split_with_sizes(y, [F, F], -1)``, ``mul(silu(g), u)`` (either operand order): two kernels
    and a round trip of ``silu(g)`` through memory between them.
With: ``silu_mul(y)`` (``torch.ops.trtllm_flash.silu_mul``), one kernel that reads the gate and up
    halves of each row of the fused GEMM output and writes ``silu(g) * u`` once.
Only matches when the split has exactly these two getitems, the gate getitem feeds only the silu, the silu
only the mul and the up getitem only the mul (otherwise the intermediates are still needed); a split
along another dim, of other sizes or into more parts, and ``silu`` applied to the second half, do not match.
"""
from __future__ import annotations

import logging
import operator
from typing import List, Optional, Tuple

import torch
from torch.fx import GraphModule, Node

from trtllm_flash.transforms.graph_utils import is_op, last_dim_split_sizes
from trtllm_flash.transforms.registry import BaseTransform, BuildContext, TransformInfo, register_transform

logger = logging.getLogger(__name__)


def _getitem_of(node: object, index: int) -> Optional[Node]:
    """``node``'s source when it is ``getitem(source, index)``, else None."""
    if isinstance(node, Node) and node.op == "call_function" and node.target is operator.getitem and node.args[1] == index:
        return node.args[0] if isinstance(node.args[0], Node) else None
    return None


def _halving_split(split: Node) -> bool:
    """``split_with_sizes(y, [F, F], -1 or last dim)``."""
    sizes = last_dim_split_sizes(split)
    return sizes is not None and len(sizes) == 2 and isinstance(sizes[0], int) and sizes[0] > 0 and sizes[0] == sizes[1]


def _match(mul: Node) -> Optional[Tuple[Node, Node, Node, Node]]:
    """``(split, gate, silu, up)`` when ``mul`` is ``silu(getitem(split, 0)) * getitem(split, 1)`` of a
    halving split whose intermediates have no other users."""
    if not (is_op(mul, torch.ops.aten.mul.Tensor) and len(mul.args) == 2 and not mul.kwargs):
        return None
    for silu, up in (mul.args, mul.args[::-1]):
        if not (isinstance(silu, Node) and is_op(silu, torch.ops.aten.silu.default) and len(silu.args) == 1 and not silu.kwargs):
            continue
        gate = silu.args[0]
        split = _getitem_of(gate, 0)
        if split is None or _getitem_of(up, 1) is not split or not _halving_split(split):
            continue
        if set(split.users) == {gate, up} and list(gate.users) == [silu] and list(silu.users) == [mul] and list(up.users) == [mul]:
            return split, gate, silu, up
    return None


@register_transform("fuse_silu_mul")
class FuseSiluMul(BaseTransform):
    def apply(self, gm: GraphModule, ctx: BuildContext) -> Tuple[GraphModule, TransformInfo]:
        if not hasattr(torch.ops.trtllm_flash, "silu_mul"):
            logger.info("fuse_silu_mul: torch.ops.trtllm_flash.silu_mul is not registered; skipped")
            return gm, TransformInfo(skipped=True, note="op missing")
        matches: List[Tuple[Node, Tuple[Node, Node, Node, Node]]] = []
        for node in gm.graph.nodes:
            found = _match(node)
            if found is not None:
                matches.append((node, found))
        if not matches:
            logger.info("fuse_silu_mul: no silu(gate) * up over a split gate/up GEMM output; skipped")
            return gm, TransformInfo(skipped=True, note="no split + silu + mul")
        for mul, (split, gate, silu, up) in matches:
            # at the mul: the fused GEMM output it reads comes before the split, so before the mul too
            with gm.graph.inserting_before(mul):
                fused = gm.graph.call_function(torch.ops.trtllm_flash.silu_mul.default, (split.args[0],))
            fused.meta.update(mul.meta)  # same value as the mul it stands for (shape, dtype, module path)
            mul.replace_all_uses_with(fused)
            for dead in (mul, silu, up, gate, split):
                gm.graph.erase_node(dead)
        gm.graph.lint()
        gm.recompile()
        return gm, TransformInfo(skipped=False, num_matches=len(matches))
