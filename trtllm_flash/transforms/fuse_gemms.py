"""fuse_gemms (stage post_load_fusion).

Replaces: two or more ``linear(x, W_i)`` (no bias) reading the same activation ``x`` — attention's
    q/k/v projections, DeltaNet's q/k/v/b projections, the FFN's gate/up projections.
With: one ``linear(x, cat(W_1..W_n))`` against a weight concatenated once at build time, followed by
    ``split_with_sizes`` along the last dim: one GEMM (one read of ``x``, one launch) instead of n.
The original weights are dropped from the graph module.
"""
from __future__ import annotations

import logging
import operator
from collections import defaultdict
from typing import Dict, List, Tuple

import torch
from torch.fx import GraphModule, Node

from trtllm_flash.transforms.graph_utils import add_constant, attr_tensor, drop_unused_attributes, concat_last_dim_value, fused_attr_name, is_op
from trtllm_flash.transforms.registry import BaseTransform, BuildContext, TransformInfo, register_transform

logger = logging.getLogger(__name__)


def _fusable(gm: GraphModule, node: Node) -> bool:
    return (
        is_op(node, torch.ops.aten.linear)
        and len(node.args) == 2
        and not node.kwargs
        and isinstance(node.args[1], Node)
        and node.args[1].op == "get_attr"
        and attr_tensor(gm, node.args[1]).dim() == 2
    )


@register_transform("fuse_gemms")
class FuseGemms(BaseTransform):
    def apply(self, gm: GraphModule, ctx: BuildContext) -> Tuple[GraphModule, TransformInfo]:
        groups: Dict[Node, List[Node]] = defaultdict(list)
        for node in gm.graph.nodes:
            if _fusable(gm, node):
                groups[node.args[0]].append(node)
        groups = {x: ls for x, ls in groups.items() if len(ls) > 1 and len({attr_tensor(gm, n.args[1]).dtype for n in ls}) == 1}
        if not groups:
            logger.info("fuse_gemms: no linears sharing an input; skipped")
            return gm, TransformInfo(skipped=True, note="nothing to fuse")
        for x, linears in groups.items():
            weights = [n.args[1] for n in linears]
            tensors = [attr_tensor(gm, w) for w in weights]
            fused_weight = add_constant(gm, fused_attr_name(weights), torch.cat(tensors, dim=0), before=linears[0])
            with gm.graph.inserting_after(linears[0]):
                fused = gm.graph.call_function(torch.ops.aten.linear.default, (x, fused_weight))
            with gm.graph.inserting_after(fused):
                split = gm.graph.call_function(torch.ops.aten.split_with_sizes.default, (fused, [t.shape[0] for t in tensors], -1))
            parts = [linear.meta.get("val") for linear in linears]
            fused.meta["val"] = concat_last_dim_value(parts)
            split.meta["val"] = parts
            previous = split
            for index, linear in enumerate(linears):
                with gm.graph.inserting_after(previous):
                    part = gm.graph.call_function(operator.getitem, (split, index))
                part.meta.update(linear.meta)  # same value as the linear it stands for (shape, module path)
                previous = part
                linear.replace_all_uses_with(part)
            for linear, weight in zip(linears, weights):
                gm.graph.erase_node(linear)
                if not weight.users:
                    gm.graph.erase_node(weight)
        gm.graph.lint()
        drop_unused_attributes(gm)
        gm.recompile()
        return gm, TransformInfo(skipped=False, num_matches=len(groups))
