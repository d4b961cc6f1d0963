"""``torch.ops.trtllm_flash.rms_norm_linear`` and ``add_rms_norm_linear``: a norm op of
:mod:`trtllm_flash.ops.norms` and the bias-free projection it feeds, as one op.

    rms_norm_linear(x [..., K], norm_weight, weight [N, K], eps, group_size, gate=None) -> y [..., N]
    add_rms_norm_linear(x, residual [..., K], norm_weight [K], weight [N, K], eps) -> (y [..., N], x + residual)

``norm_weight`` is ``[group_size]`` without a gate (the ``rms_norm`` op's weight, per group) and ``[K]``
with one (``rms_norm_gated``'s). CPU / eager: the references (the norm op's arithmetic, then
``F.linear``). CUDA: one row (batch-1 decode) in bf16 / fp16 with a contiguous weight takes the fused
Triton GEMV of :mod:`.kernels`; every other case runs the norm op's Triton kernel, then cuBLAS.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from trtllm_flash.ops.dtypes import check_float
from trtllm_flash.ops.linear.ops import uses_gemv
from trtllm_flash.ops.norm_linear import kernels, reference
from trtllm_flash.ops.norms.ops import check_like_x  # importing it registers the norm ops the unfused CUDA path calls
from trtllm_flash.ops.dispatch import register_fast


def _check(x: torch.Tensor, norm_weight: torch.Tensor, weight: torch.Tensor, eps: float, group_size: int, gate: Optional[torch.Tensor]) -> None:
    for name, t in (("x", x), ("norm_weight", norm_weight), ("weight", weight)):
        check_float(name, t)
    if not x.dtype == norm_weight.dtype == weight.dtype:
        raise ValueError(f"x, norm_weight and weight must share a dtype, got {x.dtype}, {norm_weight.dtype} and {weight.dtype}")
    if weight.dim() != 2 or x.dim() < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"x must be [..., K] and weight [N, K], got {tuple(x.shape)} and {tuple(weight.shape)}")
    k = x.shape[-1]
    if group_size <= 0 or k % group_size:
        raise ValueError(f"group_size must be a positive divisor of K={k}, got {group_size}")
    expected = k if gate is not None else group_size
    if norm_weight.shape != (expected,):
        raise ValueError(f"norm_weight must be [{expected}] ({'K, with a gate' if gate is not None else 'group_size'}), got {tuple(norm_weight.shape)}")
    if gate is not None:
        check_like_x("gate", gate, x)
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")


def uses_fused_gemv(x: torch.Tensor, weight: torch.Tensor, group_size: int) -> bool:
    """True when the CUDA path takes the fused Triton GEMV rather than norm kernel + cuBLAS."""
    return uses_gemv(x, weight) and kernels.group_fits(x.shape[-1], group_size)


@torch.library.custom_op("trtllm_flash::rms_norm_linear", mutates_args=())
def rms_norm_linear(
    x: torch.Tensor, norm_weight: torch.Tensor, weight: torch.Tensor, eps: float, group_size: int, gate: Optional[torch.Tensor] = None
) -> torch.Tensor:
    _check(x, norm_weight, weight, eps, group_size, gate)
    return reference.rms_norm_linear_reference(x, norm_weight, weight, eps, group_size, gate)


@rms_norm_linear.register_fake
def _rms_norm_linear_fake(x, norm_weight, weight, eps, group_size, gate=None):
    _check(x, norm_weight, weight, eps, group_size, gate)
    return x.new_empty((*x.shape[:-1], weight.shape[0]))


@register_fast(rms_norm_linear)
def _rms_norm_linear_cuda(x, norm_weight, weight, eps, group_size, gate=None):
    _check(x, norm_weight, weight, eps, group_size, gate)
    if uses_fused_gemv(x, weight, group_size):
        return kernels.norm_gemv_triton(x, norm_weight, weight, eps, group_size, gate=gate)[0]
    if gate is not None:
        normed = torch.ops.trtllm_flash.rms_norm_gated(x, norm_weight, gate, eps, group_size)
    else:
        normed = torch.ops.trtllm_flash.rms_norm(x.unflatten(-1, (-1, group_size)), norm_weight, eps).flatten(-2)
    return F.linear(normed, weight)


@torch.library.custom_op("trtllm_flash::add_rms_norm_linear", mutates_args=())
def add_rms_norm_linear(
    x: torch.Tensor, residual: torch.Tensor, norm_weight: torch.Tensor, weight: torch.Tensor, eps: float
) -> Tuple[torch.Tensor, torch.Tensor]:
    _check(x, norm_weight, weight, eps, x.shape[-1], None)
    check_like_x("residual", residual, x)
    return reference.add_rms_norm_linear_reference(x, residual, norm_weight, weight, eps)


@add_rms_norm_linear.register_fake
def _add_rms_norm_linear_fake(x, residual, norm_weight, weight, eps):
    _check(x, norm_weight, weight, eps, x.shape[-1], None)
    check_like_x("residual", residual, x)
    return x.new_empty((*x.shape[:-1], weight.shape[0])), x.new_empty(x.shape)


@register_fast(add_rms_norm_linear)
def _add_rms_norm_linear_cuda(x, residual, norm_weight, weight, eps):
    _check(x, norm_weight, weight, eps, x.shape[-1], None)
    check_like_x("residual", residual, x)
    if uses_fused_gemv(x, weight, x.shape[-1]):
        return kernels.norm_gemv_triton(x, norm_weight, weight, eps, x.shape[-1], residual=residual)
    normed, total = torch.ops.trtllm_flash.add_rms_norm(x, residual, norm_weight, eps)
    return F.linear(normed, weight), total
