"""fuse_mamba_a_log (stage post_load_fusion).

Replaces: ``neg(exp(A_log))`` — with up to four unary casts between (``A_log.float()``) — recomputed on
    every forward of every Mamba2 layer, where ``A_log`` is a parameter whose name ends in ``A_log``.
With: a buffer ``<prefix>A_fused = -exp(A_log.float())`` computed once at build time; the exp / neg
    nodes and the no-longer-read ``A_log`` parameter are removed.
"""
from __future__ import annotations

import logging
from typing import List, Optional, Tuple

import torch
from torch.fx import GraphModule, Node

from trtllm_flash.transforms.graph_utils import add_constant, erase_unused, evaluate_param_subgraph, is_op
from trtllm_flash.transforms.registry import BaseTransform, BuildContext, TransformInfo, register_transform

logger = logging.getLogger(__name__)

_EXP = (torch.ops.aten.exp,)
_NEG = (torch.ops.aten.neg,)
_UNARY_CASTS = (torch.ops.aten.to, torch.ops.aten._to_copy, torch.ops.aten.clone, torch.ops.aten.contiguous)
_MAX_CASTS = 4


def _a_log_chain(exp_node: Node) -> Optional[List[Node]]:
    """The nodes from ``A_log``'s get_attr up to ``exp_node`` (casts included), or None if not an A_log."""
    chain = [exp_node]
    node = exp_node.args[0]
    for _ in range(_MAX_CASTS + 1):
        if not isinstance(node, Node):
            return None
        if node.op == "get_attr":
            return [node] + chain[::-1] if str(node.target).endswith("A_log") else None
        if not is_op(node, list(_UNARY_CASTS)):
            return None
        chain.append(node)
        node = node.args[0]
    return None


@register_transform("fuse_mamba_a_log")
class FuseMambaALog(BaseTransform):
    def apply(self, gm: GraphModule, ctx: BuildContext) -> Tuple[GraphModule, TransformInfo]:
        matches = []
        for neg in gm.graph.nodes:
            if is_op(neg, list(_NEG)) and isinstance(neg.args[0], Node) and is_op(neg.args[0], list(_EXP)):
                chain = _a_log_chain(neg.args[0])
                if chain is not None:
                    matches.append((neg, chain))
        if not matches:
            logger.info("fuse_mamba_a_log: no -exp(A_log) pattern; skipped")
            return gm, TransformInfo(skipped=True, note="no -exp(A_log)")
        for neg, chain in matches:
            prefix = str(chain[0].target)[: -len("A_log")]
            fused = add_constant(gm, f"{prefix}A_fused", evaluate_param_subgraph(gm, neg).contiguous(), before=neg)
            neg.replace_all_uses_with(fused)
            erase_unused(gm, [neg, *chain[::-1]])
        gm.recompile()
        return gm, TransformInfo(skipped=False, num_matches=len(matches))
