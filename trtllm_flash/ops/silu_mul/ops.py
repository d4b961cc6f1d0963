"""SwiGLU activation source op in ``torch.ops.trtllm_flash`` (no cache): ``silu_mul``.
CPU / eager: the reference (bit-identical to the unfused ``silu(gate) * up``); CUDA: the Triton kernel.

``silu_mul(x [..., 2F]) -> y [..., F] = silu(x[..., :F]) * x[..., F:]`` (contiguous) in x's dtype: gate
first, then up, as ``fuse_gemms`` concatenates ``gate_proj`` and ``up_proj``; ``fuse_silu_mul`` puts it
in the graph.
"""
from __future__ import annotations

import torch

from trtllm_flash.ops.dtypes import check_float
from trtllm_flash.ops.silu_mul import kernels, reference
from trtllm_flash.ops.dispatch import register_fast


def _check_x(x: torch.Tensor) -> None:
    check_float("x", x)
    if x.dim() < 1:
        raise ValueError("x must have at least one dim [..., 2F], got a 0-dim tensor")
    if x.shape[-1] == 0 or x.shape[-1] % 2:
        raise ValueError(f"x's last dim must be even and non-zero (gate and up halves), got shape {tuple(x.shape)}")


@torch.library.custom_op("trtllm_flash::silu_mul", mutates_args=())
def silu_mul(x: torch.Tensor) -> torch.Tensor:
    """``silu(x[..., :F]) * x[..., F:]``, ``[..., 2F] -> [..., F]``, in x's dtype."""
    _check_x(x)
    # contiguous like the fake and the kernel (the eager result follows a permuted x's layout; same values)
    return reference.silu_mul_reference(x).contiguous()


@silu_mul.register_fake
def _silu_mul_fake(x):
    _check_x(x)
    return x.new_empty((*x.shape[:-1], x.shape[-1] // 2))


@register_fast(silu_mul)
def _silu_mul_cuda(x: torch.Tensor) -> torch.Tensor:
    _check_x(x)
    return kernels.silu_mul_triton(x)
