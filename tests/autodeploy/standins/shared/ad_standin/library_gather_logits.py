"""Upstream's ``gather_logits_before_lm_head`` transform and its op, as both generations have them.

Mirrors NVIDIA/TensorRT-LLM ``tensorrt_llm/_torch/auto_deploy/transform/library/gather_logits_before_lm_head.py``
at commit 1a63c054 (stored version 4153367976) and ``get_lm_head_node`` of
``tensorrt_llm/_torch/auto_deploy/utils/_graph.py`` (stored version 3794651400):

* the "lm head node" is the output node's first input, or that node's input when it is an ``aten.to``;
* if it is a linear op, its first input (the hidden states) is gathered, otherwise the lm head node
  itself (so on a graph whose output is ``div(to(linear(h)), norm)`` the gather lands AFTER the division
  and every token's logits are still computed);
* the gather is ``auto_deploy::gather_logits_before_lm_head(x, logits_gather_indices,
  logits_gather_info_host)``, inserted right after the gathered node, taking over all its uses; both
  metadata inputs come from ``_add_or_retrieve_input``; the info is ``TransformInfo(skipped=False,
  num_matches=1)``.
The op's body is reduced to what ``SequenceInfo.maybe_gather_and_squeeze_logits`` (attention_interface
stored version 18438348684) describes: ``logits_gather_info_host = [num_tokens_to_gather,
gather_required]``; when required, the first ``num_tokens_to_gather`` flat token indices are kept
(``[1, n, ...]``). The ``BatchInfo`` generation (attention_interface stored version 51834141611,
``maybe_gather_and_squeeze``) inserts ``auto_deploy::gather_tokens(x, token_gather_indices,
batch_info_host)`` instead, the count and flag in ``batch_info_host[10:12]``.
"""
from __future__ import annotations

import torch

from .transform_core import TransformInfo


def _gather(x: torch.Tensor, indices: torch.Tensor, num: int, required: int) -> torch.Tensor:
    if not required:
        return x.clone()
    return x.reshape(-1, *x.shape[2:])[indices[:num].long()].unsqueeze(0)


def _define_op(name: str, info_slots: slice) -> None:
    """Define ``auto_deploy::<name>(x, indices, info_host)`` once per process (stand-ins are re-imported)."""
    try:
        getattr(torch.ops.auto_deploy, name).default
        return
    except (AttributeError, RuntimeError):
        pass

    def gather(x: torch.Tensor, indices: torch.Tensor, info_host: torch.Tensor) -> torch.Tensor:
        return _gather(x, indices, *info_host[info_slots].tolist())

    op = torch.library.custom_op(f"auto_deploy::{name}", gather, mutates_args=())
    op.register_fake(lambda x, indices, info_host: x.new_empty(1, torch.library.get_ctx().new_dynamic_size(), *x.shape[2:]))


_define_op("gather_logits_before_lm_head", slice(0, 2))
_define_op("gather_tokens", slice(10, 12))


def get_lm_head_node(gm):
    output = next(n for n in gm.graph.nodes if n.op == "output")
    node = output.all_input_nodes[0]
    if node.op == "call_function" and getattr(node.target, "overloadpacket", node.target) is torch.ops.aten.to:
        node = node.all_input_nodes[0]
    return node


def is_linear_op(node) -> bool:
    return node.op == "call_function" and getattr(node.target, "overloadpacket", node.target) is torch.ops.aten.linear


def make_transform(base, batch_info: bool = False):
    """The transform class on ``base`` (the generation's ``BaseTransform``); ``batch_info``: the
    ``BatchInfo`` generation's op and inputs."""
    op_name, inputs = ("gather_tokens", ("token_gather_indices", "batch_info_host")) if batch_info else (
        "gather_logits_before_lm_head", ("logits_gather_indices", "logits_gather_info_host"))

    class GatherLogitsBeforeLmHeadTransform(base):
        def _apply(self, gm, cm, factory, shared_config):
            lm_head = get_lm_head_node(gm)
            to_gather = lm_head.all_input_nodes[0] if is_linear_op(lm_head) else lm_head
            indices, info = (self._add_or_retrieve_input(gm, cm, name) for name in inputs)
            with gm.graph.inserting_after(to_gather):
                gathered = gm.graph.call_function(getattr(torch.ops.auto_deploy, op_name).default, args=(to_gather, indices, info))
            to_gather.replace_all_uses_with(gathered)
            gathered.replace_input_with(gathered, to_gather)
            gm.recompile()
            return gm, TransformInfo(skipped=False, num_matches=1)

    return GatherLogitsBeforeLmHeadTransform


