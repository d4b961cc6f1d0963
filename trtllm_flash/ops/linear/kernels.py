"""Triton GEMV for one row: ``y [N] = weight [N, K] @ x [K]``, the batch-1 decode case of every projection.

At one row a linear layer only streams its weight, so the kernel is a bandwidth kernel: each program
reads ``BLOCK_N`` whole weight rows in ``[BLOCK_N, BLOCK_K]`` tiles, multiplies them by the matching
slice of ``x`` in fp32 and reduces once at the end. Small tiles give every SM several programs to hide
memory latency with; the tile shape is autotuned per ``(N, K)`` at the first call (outside CUDA-graph
capture: the graph runner's warm-up call makes it). On the H100, at the 1B / 3B projection shapes, it
takes 4-40 % less time than cuBLAS's batch-1 kernels per shape, 12-13 % over a decode step's
projections (``python -m bench.ops_linear``). On Hopper it launches with PDL (:mod:`trtllm_flash.ops.pdl`)
and reads its first weight tile while the previous kernel finishes (34 µs less per 1B decode step).

The same kernel streams FP8 (e4m3) weights with one fp32 scale per output row (``linear_fp8``): the
tiles are converted to fp32 as they are read and each row's sum is multiplied by its scale once.
"""
from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

from trtllm_flash.ops import pdl

#: the tile shapes the autotuner tries (the winners at the 1B / 3B shapes on the H100 are among them)
CONFIGS = [
    triton.Config({"BLOCK_N": block_n, "BLOCK_K": block_k}, num_warps=warps, num_stages=3)
    for block_n in (4, 8, 16)
    for block_k in (512, 1024)
    for warps in (4, 8)
]
#: FP8 weights: a tile of the same bytes holds twice the columns
FP8_CONFIGS = [
    triton.Config({"BLOCK_N": block_n, "BLOCK_K": block_k}, num_warps=warps, num_stages=3)
    for block_n in (4, 8, 16)
    for block_k in (1024, 2048)
    for warps in (4, 8)
]


@triton.jit
def first_weight_tile(weight, rows, mask_n, K, BLOCK_K: tl.constexpr, USE_PDL: tl.constexpr):
    """``(w_rows [BLOCK_N, 1] row pointers, weight[rows, 0:BLOCK_K])``. The weights depend on no earlier
    kernel, so under PDL this tile is read while the previous kernel finishes; then the program waits for
    it (everything after may read its outputs) and lets the next kernel launch."""
    w_rows = weight + rows[:, None].to(tl.int64) * K
    cols = tl.arange(0, BLOCK_K)
    b_w = tl.load(w_rows + cols[None, :], mask=mask_n[:, None] & (cols < K)[None, :], other=0.0)
    if USE_PDL:
        tl.extra.cuda.gdc_wait()
        tl.extra.cuda.gdc_launch_dependents()
    return w_rows, b_w


@triton.jit
def _gemv_kernel(x, weight, scale, y, N, K, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, HAS_SCALE: tl.constexpr, USE_PDL: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = rows < N
    w_rows, b_w = first_weight_tile(weight, rows, mask_n, K, BLOCK_K, USE_PDL)
    cols = tl.arange(0, BLOCK_K)
    acc = b_w.to(tl.float32) * tl.load(x + cols, mask=cols < K, other=0.0).to(tl.float32)[None, :]
    for k0 in range(BLOCK_K, K, BLOCK_K):
        cols = k0 + tl.arange(0, BLOCK_K)
        mask_k = cols < K
        b_w = tl.load(w_rows + cols[None, :], mask=mask_n[:, None] & mask_k[None, :], other=0.0)
        b_x = tl.load(x + cols, mask=mask_k, other=0.0)
        acc += b_w.to(tl.float32) * b_x.to(tl.float32)[None, :]
    out = tl.sum(acc, axis=1)
    if HAS_SCALE:
        out = out * tl.load(scale + rows, mask=mask_n, other=0.0)
    tl.store(y + rows, out.to(y.dtype.element_ty), mask=mask_n)


_gemv_autotuned = triton.autotune(configs=CONFIGS, key=["N", "K"])(_gemv_kernel)
_gemv_fp8_autotuned = triton.autotune(configs=FP8_CONFIGS, key=["N", "K"])(_gemv_kernel)


def one_row(t: torch.Tensor, k: int) -> torch.Tensor:
    """A one-row ``t [..., K]`` as a ``[K]`` vector with unit stride (a view when it already has one)."""
    flat = t.reshape(k)
    return flat if flat.stride(0) == 1 else flat.contiguous()


def gemv_triton(x: torch.Tensor, weight: torch.Tensor, config: Optional[triton.Config] = None, scale: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``x [..., K]`` holding one row, ``weight [N, K]`` contiguous -> ``y [..., N]`` in x's dtype.

    ``scale [N]`` (fp32): ``y[n] = scale[n] * (weight[n] . x)``, for FP8 weights. ``config`` fixes the
    tile shape instead of autotuning (tests, and the interpreter, which cannot time)."""
    n, k = weight.shape
    flat = one_row(x, k)
    y = torch.empty((*x.shape[:-1], n), dtype=x.dtype, device=x.device)
    use_pdl = pdl.enabled(x)
    has_scale = scale is not None
    scale = scale if has_scale else weight  # never read without HAS_SCALE
    if config is None:
        tuned = _gemv_fp8_autotuned if weight.element_size() == 1 else _gemv_autotuned
        tuned[lambda meta: (triton.cdiv(n, meta["BLOCK_N"]),)](flat, weight, scale, y, n, k, HAS_SCALE=has_scale, USE_PDL=use_pdl, launch_pdl=use_pdl)
    else:
        block_n = config.kwargs["BLOCK_N"]
        _gemv_kernel[(triton.cdiv(n, block_n),)](
            flat, weight, scale, y, n, k, HAS_SCALE=has_scale, USE_PDL=use_pdl, launch_pdl=use_pdl, num_warps=config.num_warps, **config.kwargs
        )
    return y
