"""Pure-torch norms, fp32 compute: the references the Triton kernels are held to (and the CPU ops).

All work on the last dim ``N`` of ``x [..., N]``.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F


def rms_norm_reference(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """MODEL.md's RMSNorm: ``weight * (x * rsqrt(mean(x^2) + eps)).to(x.dtype)``; ``weight [N]``.
    The result dtype is ``promote(x.dtype, weight.dtype)``."""
    xf = x.float()
    normed = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return weight * normed.to(x.dtype)


def add_rms_norm_reference(
    x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Residual add then RMSNorm: ``(rms_norm(x + residual), x + residual)``, the sum in x's dtype."""
    total = x + residual
    return rms_norm_reference(total, weight, eps), total


def rms_norm_gated_reference(
    x: torch.Tensor, weight: torch.Tensor, gate: torch.Tensor, eps: float, group_size: int
) -> torch.Tensor:
    """Mamba2's gated norm with ``norm_before_gate=False``: ``y = x * silu(gate)`` in fp32, RMS-normalised
    over consecutive groups of ``group_size`` along N, times ``weight [N]`` in fp32, cast to x's dtype."""
    y = x.float() * F.silu(gate.float())
    groups = y.unflatten(-1, (-1, group_size))
    normed = (groups * torch.rsqrt(groups.pow(2).mean(-1, keepdim=True) + eps)).flatten(-2)
    return (normed * weight.float()).to(x.dtype)


def l2norm_reference(x: torch.Tensor, eps: float) -> torch.Tensor:
    """``x * rsqrt(sum(x^2) + eps)`` over the last dim in fp32, cast to x's dtype (fla's l2norm)."""
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).sum(-1, keepdim=True) + eps)).to(x.dtype)
