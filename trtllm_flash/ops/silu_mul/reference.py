"""Pure-torch SwiGLU activation: the reference the Triton kernel is held to (and the CPU op).

``x [..., 2F]`` holds the gate in ``x[..., :F]`` and the up projection in ``x[..., F:]`` (the order
``fuse_gemms`` concatenates ``gate_proj`` and ``up_proj`` in).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def silu_mul_reference(x: torch.Tensor) -> torch.Tensor:
    """``y [..., F] = silu(x[..., :F]) * x[..., F:]`` in x's dtype, computed exactly as the unfused eager
    FFN does (``aten.silu`` on the gate, rounded to x's dtype, then ``aten.mul`` with up, rounded again) on
    the same views of x (the split of the fused GEMM output): bit-identical to that graph on the same device."""
    gate, up = x.chunk(2, dim=-1)
    return F.silu(gate) * up
