"""quantize_fp8_weights (stage post_load_fusion, after use_gemv_linear, before fuse_norm_linear; off by
default: ``transforms: {quantize_fp8_weights: {enabled: true}}``).

Replaces: ``trtllm_flash.linear(x, W)`` with a bf16 / fp16 weight ``W [N, K]`` computed from parameters
    alone (a parameter, or the tied embedding's vocabulary slice; every projection, the
    fused ones, and the lm_head unless ``include_lm_head`` is false).
With: ``trtllm_flash.linear_fp8(x, W8, scale)`` (:mod:`trtllm_flash.ops.linear_fp8`): ``W`` quantized
    once, here, to FP8 e4m3 with one fp32 scale per output row. At batch-1 decode the GEMV streams half
    the bytes; larger batches run cuBLASLt's FP8 GEMM (where N and K are multiples of 16; other shapes
    dequantize). The bf16 weights are dropped unless another node
    still reads them (a tied embedding keeps its table; the lm_head then reads its own FP8 copy).
The quantized projections are not fused with the norm before them (``fuse_norm_linear`` matches bf16
projections only), so each keeps a separate norm kernel.
"""
from __future__ import annotations

import logging
from typing import Tuple

import torch
from torch.fx import GraphModule

from trtllm_flash.ops.linear_fp8 import quantize_rows
from trtllm_flash.transforms.graph_utils import add_constant, drop_unused_attributes, erase_unused, evaluate_param_subgraph, find_op_nodes, param_only_inputs
from trtllm_flash.transforms.registry import BaseTransform, BuildContext, TransformConfig, TransformInfo, register_transform

logger = logging.getLogger(__name__)


class QuantizeFp8WeightsConfig(TransformConfig):
    include_lm_head: bool = True


def _is_lm_head(gm: GraphModule, node) -> bool:
    """The linear whose output is the graph's logits (the last linear of the graph)."""
    linears = find_op_nodes(gm, torch.ops.trtllm_flash.linear)
    return bool(linears) and node is linears[-1]


@register_transform("quantize_fp8_weights")
class QuantizeFp8Weights(BaseTransform):
    config_class = QuantizeFp8WeightsConfig

    def apply(self, gm: GraphModule, ctx: BuildContext) -> Tuple[GraphModule, TransformInfo]:
        if not hasattr(torch, "float8_e4m3fn"):
            return gm, TransformInfo(skipped=True, note="torch has no float8_e4m3fn")
        candidates = []
        for node in find_op_nodes(gm, torch.ops.trtllm_flash.linear):
            weight = node.args[1] if len(node.args) == 2 else None
            if weight is None or not (getattr(weight, "op", None) == "get_attr" or param_only_inputs(weight)):
                continue
            w = evaluate_param_subgraph(gm, weight)
            if w.dim() == 2 and w.dtype in (torch.bfloat16, torch.float16):
                candidates.append(node)
        if not self.config.include_lm_head:
            candidates = [n for n in candidates if not _is_lm_head(gm, n)]
        if not candidates:
            logger.info("quantize_fp8_weights: no bf16 / fp16 linear to quantize; skipped")
            return gm, TransformInfo(skipped=True, note="no linear")
        for node in candidates:
            weight = node.args[1]
            w8, scale = quantize_rows(evaluate_param_subgraph(gm, weight))
            name = weight.target if weight.op == "get_attr" else f"{weight.name}_weight"
            w8_node = add_constant(gm, f"{name}_fp8", w8, before=node)
            scale_node = add_constant(gm, f"{name}_fp8_scale", scale, before=node)
            node.target = torch.ops.trtllm_flash.linear_fp8.default
            node.args = (node.args[0], w8_node, scale_node)
            erase_unused(gm, [weight])
        gm.graph.lint()
        drop_unused_attributes(gm)
        gm.recompile()
        return gm, TransformInfo(skipped=False, num_matches=len(candidates))
