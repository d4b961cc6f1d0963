"""Triton GEMV with the RMSNorm in front of it: ``y [N] = weight [N, K] @ norm(x) [K]`` for one row.

At batch-1 decode the norm before a projection is a kernel of its own that reads and writes one
``K``-vector: ~2 µs of launch and latency, next to a GEMV of 3-15 µs. Here every program of the GEMV
(:mod:`trtllm_flash.ops.linear.kernels`, same tiling) normalises the slices of ``x`` it multiplies:

* a whole-row norm (``GROUP == K``): the row's scale ``rsqrt(mean(x^2) + eps)`` is one scalar, so it is
  applied to the finished dot product; the sum of squares is gathered in the same pass over K;
* a per-group norm (``GROUP`` divides ``BLOCK_K``, e.g. per head): each tile holds whole groups and
  normalises them before the product.

Options: ``HAS_RESIDUAL`` adds ``residual`` first (rounded to x's dtype, as the eager add) and program 0
writes that sum to ``total``; ``HAS_GATE`` multiplies by ``silu(gate)`` before the norm (Mamba2's gated
norm). ``norm_w`` is indexed modulo ``NORM_W_LEN`` (one weight per group position, or one per column).
The normalised row stays in fp32 (the unfused graph rounds it to bf16 before the GEMV). Like the plain
GEMV it launches with PDL on Hopper and reads its first weight tile before waiting for the previous kernel.
"""
from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

from trtllm_flash.ops import pdl
from trtllm_flash.ops.linear.kernels import CONFIGS, first_weight_tile, one_row

#: the per-group path needs whole groups in every tile: ``GROUP`` must divide the smallest ``BLOCK_K``
MIN_BLOCK_K = min(config.kwargs["BLOCK_K"] for config in CONFIGS)


@triton.jit
def _normed_tile(x, residual, gate, norm_w, total, cols, pid, K, NORM_W_LEN, eps,
                 GROUP: tl.constexpr, WHOLE_ROW: tl.constexpr, HAS_RESIDUAL: tl.constexpr, HAS_GATE: tl.constexpr,
                 BLOCK_K: tl.constexpr):
    """Columns ``cols`` of the normalised row (fp32; a whole-row norm's scale is left for the end) and
    their squares (for that scale)."""
    mask_k = cols < K
    b_x = tl.load(x + cols, mask=mask_k, other=0.0)
    if HAS_RESIDUAL:
        b_x = (b_x.to(tl.float32) + tl.load(residual + cols, mask=mask_k, other=0.0).to(tl.float32)).to(x.dtype.element_ty)
        tl.store(total + cols, b_x, mask=mask_k & (pid == 0))
    b_a = b_x.to(tl.float32)
    if HAS_GATE:
        b_g = tl.load(gate + cols, mask=mask_k, other=0.0).to(tl.float32)
        b_a = b_a * b_g * tl.sigmoid(b_g)
    b_sq = b_a * b_a
    if not WHOLE_ROW:
        b_groups = tl.reshape(b_a, [BLOCK_K // GROUP, GROUP])
        b_rstd = tl.rsqrt(tl.sum(b_groups * b_groups, axis=1) / GROUP + eps)
        b_a = tl.reshape(b_groups * b_rstd[:, None], [BLOCK_K])
    return b_a * tl.load(norm_w + cols % NORM_W_LEN, mask=mask_k, other=0.0).to(tl.float32), b_sq


@triton.jit
def _norm_gemv_kernel(
    x, residual, gate, norm_w, weight, y, total, N, K, NORM_W_LEN, eps,
    GROUP: tl.constexpr, WHOLE_ROW: tl.constexpr, HAS_RESIDUAL: tl.constexpr, HAS_GATE: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, USE_PDL: tl.constexpr,
):
    pid = tl.program_id(0)
    rows = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = rows < N
    w_rows, b_w = first_weight_tile(weight, rows, mask_n, K, BLOCK_K, USE_PDL)
    cols = tl.arange(0, BLOCK_K)
    b_a, sum_sq = _normed_tile(x, residual, gate, norm_w, total, cols, pid, K, NORM_W_LEN, eps, GROUP, WHOLE_ROW, HAS_RESIDUAL, HAS_GATE, BLOCK_K)
    acc = b_w.to(tl.float32) * b_a[None, :]
    for k0 in range(BLOCK_K, K, BLOCK_K):
        cols = k0 + tl.arange(0, BLOCK_K)
        b_a, b_sq = _normed_tile(x, residual, gate, norm_w, total, cols, pid, K, NORM_W_LEN, eps, GROUP, WHOLE_ROW, HAS_RESIDUAL, HAS_GATE, BLOCK_K)
        sum_sq += b_sq
        b_w = tl.load(w_rows + cols[None, :], mask=mask_n[:, None] & (cols < K)[None, :], other=0.0)
        acc += b_w.to(tl.float32) * b_a[None, :]
    out = tl.sum(acc, axis=1)
    if WHOLE_ROW:
        out = out * tl.rsqrt(tl.sum(sum_sq, axis=0) / K + eps)
    tl.store(y + rows, out.to(y.dtype.element_ty), mask=mask_n)


_norm_gemv_autotuned = triton.autotune(configs=CONFIGS, key=["N", "K", "GROUP", "HAS_RESIDUAL", "HAS_GATE"])(_norm_gemv_kernel)


def group_fits(k: int, group_size: int) -> bool:
    """True when the kernel can normalise groups of ``group_size`` out of ``K`` columns."""
    if group_size == k:
        return True
    power_of_two = group_size > 0 and group_size & (group_size - 1) == 0
    return power_of_two and group_size <= MIN_BLOCK_K and k % group_size == 0


def norm_gemv_triton(
    x: torch.Tensor,
    norm_weight: torch.Tensor,
    weight: torch.Tensor,
    eps: float,
    group_size: int,
    gate: Optional[torch.Tensor] = None,
    residual: Optional[torch.Tensor] = None,
    config: Optional[triton.Config] = None,
) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """One row ``x [..., K]`` -> ``(y [..., N] in x's dtype, x + residual [..., K] or None)``.

    ``gate``, ``residual``: like x (at most one of them is used by the callers); ``norm_weight``
    ``[group_size]`` or ``[K]``; ``weight [N, K]`` contiguous. ``config`` fixes the tile shape instead of
    autotuning (tests, and the interpreter, which cannot time)."""
    n, k = weight.shape
    if not group_fits(k, group_size):
        raise ValueError(f"group_size {group_size} does not tile K={k} (needs K itself or a power of two <= {MIN_BLOCK_K} dividing K)")
    y = torch.empty((*x.shape[:-1], n), dtype=x.dtype, device=x.device)
    total = torch.empty_like(x, memory_format=torch.contiguous_format) if residual is not None else None
    x_row = one_row(x, k)
    args = (
        x_row,
        x_row if residual is None else one_row(residual, k),
        x_row if gate is None else one_row(gate, k),
        norm_weight.contiguous(),
        weight,
        y,
        y if total is None else total,
        n,
        k,
        norm_weight.numel(),
        eps,
    )
    use_pdl = pdl.enabled(x)
    flags = dict(GROUP=group_size, WHOLE_ROW=group_size == k, HAS_RESIDUAL=residual is not None, HAS_GATE=gate is not None,
                 USE_PDL=use_pdl, launch_pdl=use_pdl)
    if config is None:
        _norm_gemv_autotuned[lambda meta: (triton.cdiv(n, meta["BLOCK_N"]),)](*args, **flags)
    else:
        grid = (triton.cdiv(n, config.kwargs["BLOCK_N"]),)
        _norm_gemv_kernel[grid](*args, **flags, num_warps=config.num_warps, **config.kwargs)
    return y, total
