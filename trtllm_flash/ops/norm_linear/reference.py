"""References of the norm + linear ops: the norm op of :mod:`trtllm_flash.ops.norms` the pair replaces,
then ``F.linear`` — exactly what the unfused graph computes.

``x [..., K]`` is normalised over consecutive groups of ``group_size`` along K (``group_size == K``: the
whole row, the decoder's pre-norm; ``group_size == head_dim``: a per-head norm whose ``[..., H, D]`` output
the graph flattened into the projection's input).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from trtllm_flash.ops.norms.reference import add_rms_norm_reference, rms_norm_gated_reference, rms_norm_reference


def rms_norm_linear_reference(
    x: torch.Tensor, norm_weight: torch.Tensor, weight: torch.Tensor, eps: float, group_size: int, gate: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """``linear(norm(x), weight)``: ``[..., K] -> [..., N]``.

    Without ``gate``: RMSNorm per group, ``norm_weight [group_size]`` (the ``rms_norm`` op's weight).
    With ``gate [..., K]``: Mamba2's gated norm ``rms_norm_gated(x, norm_weight [K], gate)``.
    """
    if gate is None:
        groups = x.unflatten(-1, (-1, group_size))
        normed = rms_norm_reference(groups, norm_weight, eps).flatten(-2)
    else:
        normed = rms_norm_gated_reference(x, norm_weight, gate, eps, group_size)
    return F.linear(normed, weight)


def add_rms_norm_linear_reference(
    x: torch.Tensor, residual: torch.Tensor, norm_weight: torch.Tensor, weight: torch.Tensor, eps: float
) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(linear(rms_norm(x + residual), weight), x + residual)``, the sum in x's dtype."""
    normed, total = add_rms_norm_reference(x, residual, norm_weight, eps)
    return F.linear(normed, weight), total
