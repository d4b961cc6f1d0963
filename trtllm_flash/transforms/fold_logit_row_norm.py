"""fold_logit_row_norm (stage post_load_fusion).

Replaces: the Nemotron-Flash logit normalisation's ``‖W_row‖₂`` — ``linalg_vector_norm(lm_head.weight,
    2, [1])`` (plus any parameter-only ops after it, e.g. a reciprocal), a reduction over the whole
    ``[vocab, hidden]`` table on every forward.
With: a ``[vocab]`` buffer ``lm_head_row_norm`` computed once at build time; the logits are still
    divided by it exactly as the reference does.
"""
from __future__ import annotations

import logging
from typing import List, Tuple

import torch
from torch.fx import GraphModule, Node

from trtllm_flash.transforms.graph_utils import add_constant, erase_unused, evaluate_param_subgraph, is_op, param_only_inputs
from trtllm_flash.transforms.registry import BaseTransform, BuildContext, TransformInfo, register_transform

logger = logging.getLogger(__name__)

_NORMS = [torch.ops.aten.linalg_vector_norm, torch.ops.aten.norm]


def _fold_root(norm: Node) -> Tuple[Node, List[Node]]:
    """Extend the parameter-only chain from ``norm`` through single users; returns (last node, chain)."""
    chain = [norm]
    while len(chain[-1].users) == 1:
        user = next(iter(chain[-1].users))
        if user.op != "call_function" or not param_only_inputs(user):
            break
        chain.append(user)
    return chain[-1], chain


@register_transform("fold_logit_row_norm")
class FoldLogitRowNorm(BaseTransform):
    def apply(self, gm: GraphModule, ctx: BuildContext) -> Tuple[GraphModule, TransformInfo]:
        norms = [n for n in gm.graph.nodes if is_op(n, _NORMS) and param_only_inputs(n)]
        if not norms:
            logger.info("fold_logit_row_norm: no norm of a parameter in the graph; skipped")
            return gm, TransformInfo(skipped=True, note="no parameter norm")
        for index, norm in enumerate(norms):
            root, chain = _fold_root(norm)
            name = "lm_head_row_norm" if index == 0 else f"lm_head_row_norm_{index}"
            folded = add_constant(gm, name, evaluate_param_subgraph(gm, root).contiguous(), before=root)
            root.replace_all_uses_with(folded)
            erase_unused(gm, chain[::-1] + [n for n in norm.all_input_nodes])
        gm.recompile()
        return gm, TransformInfo(skipped=False, num_matches=len(norms))
