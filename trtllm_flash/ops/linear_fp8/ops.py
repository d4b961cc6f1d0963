"""``torch.ops.trtllm_flash.linear_fp8(x, weight, scale)``: ``x [..., K]`` (bf16 / fp16 / fp32) times FP8
weights ``weight [N, K]`` (e4m3) with per-row scales ``scale [N]`` (fp32), output in x's dtype.

CPU / eager: the fp32 reference. CUDA:
* one row (batch-1 decode): the Triton GEMV of :mod:`trtllm_flash.ops.linear.kernels`, dequantizing in
  the kernel (half the weight bytes of bf16);
* more rows: ``torch._scaled_mm`` (cuBLASLt's FP8 GEMM) with the rows of x quantized to e4m3 on the fly
  (one absmax scale per row) when x is bf16 and K, N are multiples of 16; else the reference.
"""
from __future__ import annotations

import torch

from trtllm_flash.ops.dtypes import check_float
from trtllm_flash.ops.linear import kernels
from trtllm_flash.ops.linear_fp8.reference import FP8, FP8_MAX, linear_fp8_reference
from trtllm_flash.ops.dispatch import register_fast


def _check_inputs(x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor) -> None:
    check_float("x", x)
    if weight.dtype != FP8 or weight.dim() != 2:
        raise ValueError(f"weight must be 2-D [N, K] float8_e4m3fn, got {weight.dtype} of shape {tuple(weight.shape)}")
    if scale.dtype != torch.float32 or tuple(scale.shape) != (weight.shape[0],):
        raise ValueError(f"scale must be float32 [N] with N = {weight.shape[0]}, got {scale.dtype} of shape {tuple(scale.shape)}")
    if x.dim() < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"x must be [..., K] with K = {weight.shape[1]} (weight's dim 1), got shape {tuple(x.shape)}")


@torch.library.custom_op("trtllm_flash::linear_fp8", mutates_args=())
def linear_fp8(x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    _check_inputs(x, weight, scale)
    return linear_fp8_reference(x, weight, scale)


@linear_fp8.register_fake
def _linear_fp8_fake(x, weight, scale):
    _check_inputs(x, weight, scale)
    return x.new_empty((*x.shape[:-1], weight.shape[0]))


def uses_scaled_mm(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """True when the CUDA path of several rows takes ``torch._scaled_mm``."""
    n, k = weight.shape
    return x.dtype == torch.bfloat16 and n % 16 == 0 and k % 16 == 0 and weight.is_contiguous() and hasattr(torch, "_scaled_mm")


def scaled_mm_rows(x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Several rows: x quantized per row to e4m3, then cuBLASLt's FP8 GEMM with row-wise scales."""
    k = weight.shape[1]
    rows = x.reshape(-1, k)
    x_scale = (rows.abs().amax(dim=1, keepdim=True).float() / FP8_MAX).clamp(min=1e-12)
    x8 = (rows.float() / x_scale).to(FP8)
    y = torch._scaled_mm(x8, weight.t(), scale_a=x_scale, scale_b=scale.view(1, -1), out_dtype=torch.bfloat16)
    return y.reshape(*x.shape[:-1], weight.shape[0])


@register_fast(linear_fp8)
def _linear_fp8_cuda(x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    if x.numel() == x.shape[-1] and x.dtype in (torch.bfloat16, torch.float16) and weight.is_contiguous():
        return kernels.gemv_triton(x, weight, scale=scale)
    if uses_scaled_mm(x, weight):
        return scaled_mm_rows(x, weight, scale)
    return linear_fp8_reference(x, weight, scale)
