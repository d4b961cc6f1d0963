"""use_gemv_linear (stage post_load_fusion, last: after every pass that matches ``aten.linear``).

Replaces: ``aten.linear(x, W)`` without bias (every projection and the lm_head; after ``fuse_gemms`` the
    merged ones), which at batch-1 decode run cuBLAS's one-row kernels at 50-90 % of the copy bandwidth.
With: ``trtllm_flash.linear(x, W)`` (:mod:`trtllm_flash.ops.linear`): the same product, which on CUDA
    takes a Triton GEMV for one-row inputs and ``F.linear`` for everything else, so prefill and batched
    decode are unchanged.
Linears with a bias, or whose weight is not 2-D, are left alone.
"""
from __future__ import annotations

import logging
from typing import Tuple

import torch
from torch.fx import GraphModule, Node

from trtllm_flash.transforms.graph_utils import find_op_nodes, node_tensor
from trtllm_flash.transforms.registry import BaseTransform, BuildContext, TransformInfo, register_transform

logger = logging.getLogger(__name__)


def is_bias_free_linear_call(gm: GraphModule, node: Node) -> bool:
    """``node`` passes exactly ``(x, weight)`` with a 2-D weight (the caller checks which linear op it calls)."""
    if len(node.args) != 2 or node.kwargs:
        return False
    weight = node_tensor(gm, node.args[1])
    return weight is not None and weight.dim() == 2


@register_transform("use_gemv_linear")
class UseGemvLinear(BaseTransform):
    def apply(self, gm: GraphModule, ctx: BuildContext) -> Tuple[GraphModule, TransformInfo]:
        if not hasattr(torch.ops.trtllm_flash, "linear"):
            logger.info("use_gemv_linear: torch.ops.trtllm_flash.linear is not registered; skipped")
            return gm, TransformInfo(skipped=True, note="op missing")
        linears = [n for n in find_op_nodes(gm, torch.ops.aten.linear) if is_bias_free_linear_call(gm, n)]
        if not linears:
            logger.info("use_gemv_linear: no linear without bias; skipped")
            return gm, TransformInfo(skipped=True, note="no linear")
        for node in linears:
            node.target = torch.ops.trtllm_flash.linear.default
        gm.graph.lint()
        gm.recompile()
        return gm, TransformInfo(skipped=False, num_matches=len(linears))
