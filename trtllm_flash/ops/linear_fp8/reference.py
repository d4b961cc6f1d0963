"""Reference of ``linear_fp8`` and the weight quantization that feeds it.

Weights are FP8 e4m3 (``torch.float8_e4m3fn``, largest finite value 448) with one fp32 scale per output
row: ``W[n, :] ≈ scale[n] * W8[n, :]``, ``scale[n] = max |W[n, :]| / 448``.
"""
from __future__ import annotations

from typing import Tuple

import torch

FP8 = torch.float8_e4m3fn
FP8_MAX = float(torch.finfo(FP8).max)


def quantize_rows(weight: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """``weight [N, K]`` (float) -> ``(W8 [N, K] e4m3, scale [N] fp32)`` with per-row absmax scaling (an
    all-zero row gets scale 1)."""
    if weight.dim() != 2:
        raise ValueError(f"weight must be 2-D [N, K], got shape {tuple(weight.shape)}")
    w = weight.float()
    amax = w.abs().amax(dim=1)
    scale = torch.where(amax > 0, amax / FP8_MAX, torch.ones_like(amax))
    return (w / scale[:, None]).clamp(-FP8_MAX, FP8_MAX).to(FP8), scale


def linear_fp8_reference(x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``x [..., K]``, ``weight [N, K]`` e4m3, ``scale [N]`` -> ``(x @ W8^T) * scale`` ``[..., N]`` in x's
    dtype, computed in fp32."""
    return (torch.matmul(x.float(), weight.float().t()) * scale.float()).to(x.dtype)
