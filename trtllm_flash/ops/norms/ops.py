"""Norm source ops in ``torch.ops.trtllm_flash`` (no cache): ``rms_norm``, ``add_rms_norm``,
``rms_norm_gated``, ``l2norm``. CPU / eager: the validated fp32 references; CUDA: the Triton row kernel.
Every op normalises the last dim ``N`` of ``x [..., N]``.
"""
from __future__ import annotations

from typing import Tuple

import torch

from trtllm_flash.ops.dtypes import check_float
from trtllm_flash.ops.norms import kernels, reference
from trtllm_flash.ops.dispatch import register_fast


def _check_x_weight(x: torch.Tensor, weight: torch.Tensor, eps: float) -> None:
    check_float("x", x)
    check_float("weight", weight)
    if x.dim() < 1 or x.shape[-1] == 0:
        raise ValueError(f"x must have a non-empty last dim, got shape {tuple(x.shape)}")
    if weight.shape != x.shape[-1:]:
        raise ValueError(f"weight must be [{x.shape[-1]}] (x's last dim), got shape {tuple(weight.shape)}")
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")


def check_like_x(name: str, t: torch.Tensor, x: torch.Tensor) -> None:
    """``t`` has x's shape and dtype (a residual, a gate)."""
    if t.shape != x.shape or t.dtype != x.dtype:
        raise ValueError(f"{name} must match x ({tuple(x.shape)}, {x.dtype}), got ({tuple(t.shape)}, {t.dtype})")


@torch.library.custom_op("trtllm_flash::rms_norm", mutates_args=())
def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    _check_x_weight(x, weight, eps)
    return reference.rms_norm_reference(x, weight, eps)


@rms_norm.register_fake
def _rms_norm_fake(x, weight, eps):
    return x.new_empty(x.shape, dtype=torch.promote_types(x.dtype, weight.dtype))


register_fast(rms_norm, kernels.rms_norm_triton)


@torch.library.custom_op("trtllm_flash::add_rms_norm", mutates_args=())
def add_rms_norm(
    x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Returns ``(rms_norm(x + residual), x + residual)``."""
    _check_x_weight(x, weight, eps)
    check_like_x("residual", residual, x)
    return reference.add_rms_norm_reference(x, residual, weight, eps)


@add_rms_norm.register_fake
def _add_rms_norm_fake(x, residual, weight, eps):
    return x.new_empty(x.shape, dtype=torch.promote_types(x.dtype, weight.dtype)), x.new_empty(x.shape)


register_fast(add_rms_norm, kernels.add_rms_norm_triton)


@torch.library.custom_op("trtllm_flash::rms_norm_gated", mutates_args=())
def rms_norm_gated(x: torch.Tensor, weight: torch.Tensor, gate: torch.Tensor, eps: float, group_size: int) -> torch.Tensor:
    _check_x_weight(x, weight, eps)
    check_like_x("gate", gate, x)
    if group_size <= 0 or x.shape[-1] % group_size:
        raise ValueError(f"group_size must be a positive divisor of x's last dim {x.shape[-1]}, got {group_size}")
    return reference.rms_norm_gated_reference(x, weight, gate, eps, group_size)


@rms_norm_gated.register_fake
def _rms_norm_gated_fake(x, weight, gate, eps, group_size):
    return x.new_empty(x.shape)


register_fast(rms_norm_gated, kernels.rms_norm_gated_triton)


@torch.library.custom_op("trtllm_flash::l2norm", mutates_args=())
def l2norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    check_float("x", x)
    if x.dim() < 1 or x.shape[-1] == 0:
        raise ValueError(f"x must have a non-empty last dim, got shape {tuple(x.shape)}")
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    return reference.l2norm_reference(x, eps)


@l2norm.register_fake
def _l2norm_fake(x, eps):
    return x.new_empty(x.shape)


register_fast(l2norm, kernels.l2norm_triton)
