"""Source op ``torch.ops.trtllm_flash.delta_rule``: the delta rule over a padded batch from a zero state.

``q, k [b, s, h, dk]``, ``v [b, s, h, dv]``, ``beta [b, s, h]``, ``scale`` -> ``o [b, s, h, dv]`` in v's
dtype. Eager / CPU: the fp32 token-loop reference (validated). CUDA: fla's kernels (chunk for bf16 /
fp16, fused recurrent for fp32; see :mod:`.fla_prefill`).

Two compile-time options fold DeltaNet's prologue into the op (``fuse_delta_rule_prologue`` sets them):
``qk_l2norm_eps`` — when not None, q and k are raw and the op takes ``l2norm(q, eps), l2norm(k, eps)``
itself (None: q, k arrive L2-normalised); ``beta_sigmoid`` — when True, beta holds logits and the op
takes ``sigmoid(beta)``. Both give exactly what the unfused graph computes (see :func:`apply_prologue`).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from trtllm_flash.ops.delta_rule.fla_prefill import fla_delta_rule
from trtllm_flash.ops.delta_rule.reference import delta_rule_reference
from trtllm_flash.ops.delta_rule.validation import check_source_inputs
from trtllm_flash.ops.norms import l2norm
from trtllm_flash.ops.dispatch import register_fast


def apply_prologue(
    q: torch.Tensor, k: torch.Tensor, beta: torch.Tensor, qk_l2norm_eps: Optional[float], beta_sigmoid: bool
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The options as the unfused graph runs them, shapes and dtypes unchanged: ``l2norm(q), l2norm(k)``
    over the last dim (the ``trtllm_flash.l2norm`` op: the fp32 reference on CPU, its Triton kernel on
    CUDA) when ``qk_l2norm_eps`` is not None, ``sigmoid(beta)`` in beta's dtype when ``beta_sigmoid``."""
    if qk_l2norm_eps is not None:
        q, k = l2norm(q, qk_l2norm_eps), l2norm(k, qk_l2norm_eps)
    if beta_sigmoid:
        beta = torch.sigmoid(beta)
    return q, k, beta


@torch.library.custom_op("trtllm_flash::delta_rule", mutates_args=())
def delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    scale: float,
    qk_l2norm_eps: Optional[float] = None,
    beta_sigmoid: bool = False,
) -> torch.Tensor:
    check_source_inputs(q, k, v, beta, qk_l2norm_eps)
    q, k, beta = apply_prologue(q, k, beta, qk_l2norm_eps, beta_sigmoid)
    o, _ = delta_rule_reference(q, k, v, beta, scale)
    return o


@delta_rule.register_fake
def _delta_rule_fake(q, k, v, beta, scale, qk_l2norm_eps=None, beta_sigmoid=False):
    return v.new_empty(v.shape)


@register_fast(delta_rule)
def _delta_rule_cuda(q, k, v, beta, scale, qk_l2norm_eps=None, beta_sigmoid=False):
    q, k, beta = apply_prologue(q, k, beta, qk_l2norm_eps, beta_sigmoid)
    o, _ = fla_delta_rule(q, k, v, beta, scale)
    return o
