"""gather_logits_before_lm_head (stage post_load_fusion).

Replaces: ``lm_head(hidden [b, s, H])`` followed by pointwise logit post-processing (the division by the
    lm_head row norms, the cast to fp32), computed for all ``b * s`` tokens.
With: ``lm_head(index_select(hidden.reshape(-1, H), 0, gather_idx))`` — only the ``N`` tokens named by a
    new ``gather_idx [N]`` int64 placeholder (flat token indices) reach the lm_head; the graph output
    becomes ``[N, vocab]``.

Skips (graph untouched) when the path from the lm_head to the output holds anything but pointwise ops.
"""
from __future__ import annotations

import logging
from typing import Optional, Tuple

import torch
from torch.fx import GraphModule, Node

from trtllm_flash.transforms.graph_utils import get_or_add_placeholder, is_op, node_tensor
from trtllm_flash.transforms.registry import BaseTransform, BuildContext, TransformInfo, register_transform

logger = logging.getLogger(__name__)

#: name of the placeholder holding the flat indices of the tokens whose logits are wanted
GATHER_IDX = "gather_idx"

_LINEAR = torch.ops.aten.linear
_POINTWISE = [
    torch.ops.aten.div,
    torch.ops.aten.mul,
    torch.ops.aten.to,
    torch.ops.aten._to_copy,
    torch.ops.aten.clone,
    torch.ops.aten.contiguous,
]


def find_lm_head(gm: GraphModule) -> Optional[Node]:
    """The linear whose output reaches the graph output through pointwise ops only (else None)."""
    output = next(n for n in gm.graph.nodes if n.op == "output")
    node = output.args[0]
    while isinstance(node, Node):
        if is_op(node, _LINEAR):
            return node
        if not is_op(node, _POINTWISE):
            return None
        node = node.args[0]
    return None


@register_transform("gather_logits_before_lm_head")
class GatherLogitsBeforeLmHead(BaseTransform):
    def apply(self, gm: GraphModule, ctx: BuildContext) -> Tuple[GraphModule, TransformInfo]:
        if any(n.op == "placeholder" and n.target == GATHER_IDX for n in gm.graph.nodes):
            return gm, TransformInfo(skipped=True, note="already gathered")
        lm_head = find_lm_head(gm)
        if lm_head is None:
            logger.info("gather_logits_before_lm_head: no lm_head linear followed by pointwise ops; skipped")
            return gm, TransformInfo(skipped=True, note="no lm_head")
        hidden = lm_head.args[0]
        weight = lm_head.args[1]
        hidden_size = node_tensor(gm, weight).shape[-1]
        gather_idx = get_or_add_placeholder(gm, GATHER_IDX)
        with gm.graph.inserting_before(lm_head):
            flat = gm.graph.call_function(torch.ops.aten.reshape.default, (hidden, [-1, int(hidden_size)]))
            gathered = gm.graph.call_function(torch.ops.aten.index_select.default, (flat, 0, gather_idx))
        lm_head.replace_input_with(hidden, gathered)
        gm.graph.lint()
        gm.recompile()
        return gm, TransformInfo(skipped=False, num_matches=1)
