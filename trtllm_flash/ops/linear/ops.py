"""``torch.ops.trtllm_flash.linear(x, weight)``: ``x [..., K] @ weight[N, K]^T`` without bias.

CPU / eager: ``F.linear``. CUDA: a single row (batch-1 decode: ``x`` holds one token) with a contiguous
half-precision weight of x's dtype goes through the Triton GEMV of :mod:`.kernels`; every other case
(prefill, batched decode) is ``F.linear`` (cuBLAS), which is the better kernel once rows share the weight read.
"""
from __future__ import annotations

import torch

from trtllm_flash.ops.dtypes import check_float
from trtllm_flash.ops.linear import kernels, reference
from trtllm_flash.ops.dispatch import register_fast


def _check_inputs(x: torch.Tensor, weight: torch.Tensor) -> None:
    check_float("x", x)
    check_float("weight", weight)
    if weight.dim() != 2:
        raise ValueError(f"weight must be 2-D [N, K], got shape {tuple(weight.shape)}")
    if x.dim() < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"x must be [..., K] with K = {weight.shape[1]} (weight's dim 1), got shape {tuple(x.shape)}")


@torch.library.custom_op("trtllm_flash::linear", mutates_args=())
def linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    _check_inputs(x, weight)
    return reference.linear_reference(x, weight)


@linear.register_fake
def _linear_fake(x, weight):
    _check_inputs(x, weight)
    return x.new_empty((*x.shape[:-1], weight.shape[0]))


def uses_gemv(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """True when the CUDA path takes the Triton GEMV rather than cuBLAS."""
    return (
        x.numel() == x.shape[-1]
        and x.dtype == weight.dtype
        and x.dtype in (torch.bfloat16, torch.float16)
        and weight.is_contiguous()
    )


@register_fast(linear)
def _linear_cuda(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    if uses_gemv(x, weight):
        return kernels.gemv_triton(x, weight)
    return reference.linear_reference(x, weight)
