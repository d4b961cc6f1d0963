"""Normalisation layers of Nemotron-Flash, all computed in fp32 (MODEL.md "Modules and parameter names")."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

#: fla's l2norm epsilon (DeltaNet's q/k normalisation)
L2NORM_EPS = 1e-6


class RMSNorm(nn.Module):
    """``weight * (x * rsqrt(mean(x^2) + eps)).to(x.dtype)`` over the last dim; ``weight [dim]`` (init ones).

    Used for the decoder norms, attention q/k norms (applied per head: ``x [..., heads, head_dim]``) and
    DeltaNet's per-head ``o_norm``.
    """

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        normed = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * normed.to(x.dtype)


class RMSNormGated(nn.Module):
    """Mamba2's gated norm (norm after gate, one group): ``rmsnorm(x * silu(gate)) * weight`` over the last dim,
    in fp32, cast back to x's dtype. ``x, gate [..., dim]``, ``weight [dim]`` (init ones)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        y = x.float() * F.silu(gate.float())
        normed = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + self.eps)
        return (normed * self.weight.float()).to(x.dtype)


def l2norm(x: torch.Tensor, eps: float = L2NORM_EPS) -> torch.Tensor:
    """fla's l2norm over the last dim: ``x * rsqrt(sum(x^2) + eps)`` in fp32, cast back to x's dtype."""
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).sum(-1, keepdim=True) + eps)).to(x.dtype)
