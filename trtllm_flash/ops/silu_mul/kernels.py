"""Triton SwiGLU activation: one program per (row, block of ``BLOCK`` output columns) reads the gate and
up halves of one row of ``x [M, 2F]`` (any row stride, unit column stride) and writes ``y [M, F]``.

It rounds where the eager graph (and :func:`reference.silu_mul_reference`) rounds: ``silu(gate)`` is
computed in fp32 and rounded to x's dtype, then multiplied by ``up`` in fp32 and rounded again. So in
bf16 / fp16 the two agree up to fp32 differences in ``sigmoid`` that flip a rounding (tests: rtol 2^-6
bf16, 2^-9 fp16). Rounding once instead would be closer to the exact product but further from the
model the checkpoints were trained as, and the GPU parity test measures the distance to that model.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

#: output columns per program (power of two); a row of F = 6144 / 9216 (1B / 3B FFN) is 6 / 9 programs
MAX_BLOCK = 1024


@triton.jit
def _silu_mul_kernel(x, y, F, stride_x, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < F
    b_g = tl.load(x + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
    b_u = tl.load(x + row * stride_x + F + cols, mask=mask, other=0.0).to(tl.float32)
    b_silu = (b_g * tl.sigmoid(b_g)).to(y.dtype.element_ty).to(tl.float32)
    b_y = b_silu * b_u
    tl.store(y + row * F + cols, b_y.to(y.dtype.element_ty), mask=mask)


def silu_mul_triton(x: torch.Tensor) -> torch.Tensor:
    """Same contract as :func:`reference.silu_mul_reference`: ``x [..., 2F] -> y [..., F]`` (contiguous)
    in x's dtype. Rows of ``x`` may be strided (e.g. a slice of a wider GEMM output); a view whose rows
    cannot be flattened to one stride, or whose last dim is not unit-stride, is copied first."""
    f = x.shape[-1] // 2
    y = torch.empty((*x.shape[:-1], f), dtype=x.dtype, device=x.device)
    rows = y.numel() // f if f else 0
    if rows == 0:
        return y
    if x.stride(-1) != 1:
        x = x.contiguous()
    x2 = x.reshape(rows, 2 * f)  # a view when the leading dims flatten to one row stride, else a copy
    block = min(triton.next_power_of_2(f), MAX_BLOCK)
    _silu_mul_kernel[(rows, triton.cdiv(f, block))](
        x2, y, f, x2.stride(0), BLOCK=block, num_warps=min(max(block // 256, 1), 4)
    )
    return y
