"""fuse_add_rms_norm (stage post_load_fusion).

Replaces: ``total = add(x, residual)`` followed by ``rms_norm(total, w, eps)`` — the decoder's residual
    add and the next pre-norm: two passes over the hidden states (write ``total``, read it back).
With: ``normed, total = add_rms_norm(x, residual, w, eps)`` (``torch.ops.trtllm_flash.add_rms_norm``), one
    kernel that writes both; ``total``'s other users (the next residual add) read the second output.
Only adds of two tensors of the same shape and dtype match (the fused op does not broadcast).
"""
from __future__ import annotations

import logging
import operator
from typing import List, Tuple

import torch
from torch.fx import GraphModule, Node

from trtllm_flash.transforms.graph_utils import is_op
from trtllm_flash.transforms.registry import BaseTransform, BuildContext, TransformInfo, register_transform

logger = logging.getLogger(__name__)


def _same_shape_and_dtype(a: object, b: object) -> bool:
    if not (isinstance(a, Node) and isinstance(b, Node) and "val" in a.meta and "val" in b.meta):
        return False
    va, vb = a.meta["val"], b.meta["val"]
    return isinstance(va, torch.Tensor) and isinstance(vb, torch.Tensor) and va.shape == vb.shape and va.dtype == vb.dtype


def _matches(gm: GraphModule) -> List[Tuple[Node, Node]]:
    """(add, rms_norm) pairs, one rms_norm per add."""
    pairs = []
    for add in gm.graph.nodes:
        if not (is_op(add, torch.ops.aten.add.Tensor) and len(add.args) == 2 and not add.kwargs):
            continue
        if not _same_shape_and_dtype(*add.args):
            continue
        norms = [u for u in add.users if is_op(u, torch.ops.trtllm_flash.rms_norm) and u.args[0] is add]
        if norms:
            pairs.append((add, norms[0]))
    return pairs


@register_transform("fuse_add_rms_norm")
class FuseAddRmsNorm(BaseTransform):
    def apply(self, gm: GraphModule, ctx: BuildContext) -> Tuple[GraphModule, TransformInfo]:
        if not hasattr(torch.ops.trtllm_flash, "add_rms_norm"):
            logger.info("fuse_add_rms_norm: torch.ops.trtllm_flash.add_rms_norm is not registered; skipped")
            return gm, TransformInfo(skipped=True, note="op missing")
        pairs = _matches(gm)
        if not pairs:
            logger.info("fuse_add_rms_norm: no residual add feeding an rms_norm; skipped")
            return gm, TransformInfo(skipped=True, note="no add + rms_norm")
        for add, norm in pairs:
            x, residual = add.args
            weight, eps = norm.args[1], norm.args[2]
            # right after the add: every user of the sum comes after it (the weight is a get_attr on top)
            with gm.graph.inserting_after(add):
                fused = gm.graph.call_function(torch.ops.trtllm_flash.add_rms_norm.default, (x, residual, weight, eps))
            with gm.graph.inserting_after(fused):
                normed = gm.graph.call_function(operator.getitem, (fused, 0))
            with gm.graph.inserting_after(normed):
                total = gm.graph.call_function(operator.getitem, (fused, 1))
            normed.meta["val"] = norm.meta.get("val")
            total.meta["val"] = add.meta.get("val")
            norm.replace_all_uses_with(normed)
            gm.graph.erase_node(norm)
            add.replace_all_uses_with(total)
            gm.graph.erase_node(add)
        gm.graph.lint()
        gm.recompile()
        return gm, TransformInfo(skipped=False, num_matches=len(pairs))
