"""One Triton row kernel for every norm of the family (RMSNorm, residual-add + RMSNorm, gated RMSNorm,
L2 norm). Each program normalises one group of one row in fp32; the variants are compile-time flags so
each compiles to its own straight-line kernel.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import triton
import triton.language as tl


@triton.jit
def _row_norm_kernel(
    x,
    residual,
    gate,
    weight,
    out,
    sum_out,
    eps,
    N,
    GROUP,
    HAS_RESIDUAL: tl.constexpr,
    HAS_GATE: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
    MEAN: tl.constexpr,
    CAST_BEFORE_WEIGHT: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * GROUP + tl.arange(0, BLOCK)
    mask = tl.arange(0, BLOCK) < GROUP
    offsets = row * N + cols
    b_x = tl.load(x + offsets, mask=mask, other=0.0)
    if HAS_RESIDUAL:
        b_x = (b_x.to(tl.float32) + tl.load(residual + offsets, mask=mask, other=0.0).to(tl.float32)).to(
            x.dtype.element_ty
        )
        tl.store(sum_out + offsets, b_x, mask=mask)
    b_y = b_x.to(tl.float32)
    if HAS_GATE:
        b_g = tl.load(gate + offsets, mask=mask, other=0.0).to(tl.float32)
        b_y = b_y * b_g * tl.sigmoid(b_g)
    sum_sq = tl.sum(b_y * b_y, axis=0)
    if MEAN:
        sum_sq = sum_sq / GROUP
    b_y = b_y * tl.rsqrt(sum_sq + eps)
    if HAS_WEIGHT:
        b_w = tl.load(weight + cols, mask=mask, other=0.0)
        if CAST_BEFORE_WEIGHT:
            b_y = b_y.to(x.dtype.element_ty).to(tl.float32) * b_w.to(tl.float32)
        else:
            b_y = b_y * b_w.to(tl.float32)
    tl.store(out + offsets, b_y.to(out.dtype.element_ty), mask=mask)


def _launch(
    x: torch.Tensor,
    out_dtype: torch.dtype,
    eps: float,
    group_size: int,
    residual: Optional[torch.Tensor] = None,
    gate: Optional[torch.Tensor] = None,
    weight: Optional[torch.Tensor] = None,
    mean: bool = True,
    cast_before_weight: bool = False,
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Rows of ``x [..., N]`` made contiguous; returns ``(out [..., N] of out_dtype, x + residual or None)``."""
    n = x.shape[-1]
    rows = x.numel() // n if n else 0
    x = x.contiguous()
    out = torch.empty(x.shape, dtype=out_dtype, device=x.device)
    sum_out = torch.empty_like(x) if residual is not None else None
    if rows == 0:
        return out, sum_out
    block = triton.next_power_of_2(group_size)
    _row_norm_kernel[(rows, n // group_size)](
        x,
        residual.contiguous() if residual is not None else None,
        gate.contiguous() if gate is not None else None,
        weight.contiguous() if weight is not None else None,
        out,
        sum_out,
        eps,
        n,
        group_size,
        HAS_RESIDUAL=residual is not None,
        HAS_GATE=gate is not None,
        HAS_WEIGHT=weight is not None,
        MEAN=mean,
        CAST_BEFORE_WEIGHT=cast_before_weight,
        BLOCK=block,
        num_warps=min(max(block // 256, 1), 8),
    )
    return out, sum_out


def rms_norm_triton(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Same contract as :func:`reference.rms_norm_reference`."""
    out_dtype = torch.promote_types(x.dtype, weight.dtype)
    return _launch(x, out_dtype, eps, x.shape[-1], weight=weight, cast_before_weight=True)[0]


def add_rms_norm_triton(
    x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Same contract as :func:`reference.add_rms_norm_reference`."""
    out_dtype = torch.promote_types(x.dtype, weight.dtype)
    return _launch(x, out_dtype, eps, x.shape[-1], residual=residual, weight=weight, cast_before_weight=True)


def rms_norm_gated_triton(
    x: torch.Tensor, weight: torch.Tensor, gate: torch.Tensor, eps: float, group_size: int
) -> torch.Tensor:
    """Same contract as :func:`reference.rms_norm_gated_reference`."""
    return _launch(x, x.dtype, eps, group_size, gate=gate, weight=weight)[0]


def l2norm_triton(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Same contract as :func:`reference.l2norm_reference`."""
    return _launch(x, x.dtype, eps, x.shape[-1], mean=False)[0]
