"""Source op ``torch.ops.trtllm_flash.delta_rule``: the delta rule over a padded batch from a zero state.

``q, k [b, s, h, dk]`` (already L2-normalised), ``v [b, s, h, dv]``, ``beta [b, s, h]``, ``scale``
-> ``o [b, s, h, dv]`` in v's dtype. Eager / CPU: the fp32 token-loop reference (validated). CUDA:
fla's kernels (chunk for bf16 / fp16, fused recurrent for fp32; see :mod:`.fla_prefill`).
"""
from __future__ import annotations

import torch

from trtllm_flash.ops.delta_rule.fla_prefill import fla_delta_rule
from trtllm_flash.ops.delta_rule.reference import delta_rule_reference
from trtllm_flash.ops.delta_rule.validation import check_source_inputs


@torch.library.custom_op("trtllm_flash::delta_rule", mutates_args=())
def delta_rule(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor, scale: float) -> torch.Tensor:
    check_source_inputs(q, k, v, beta)
    o, _ = delta_rule_reference(q, k, v, beta, scale)
    return o


@delta_rule.register_fake
def _delta_rule_fake(q, k, v, beta, scale):
    return v.new_empty(v.shape)


@delta_rule.register_kernel("cuda")
def _delta_rule_cuda(q, k, v, beta, scale):
    o, _ = fla_delta_rule(q, k, v, beta, scale)
    return o
