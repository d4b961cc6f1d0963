"""Source op ``torch.ops.trtllm_flash.causal_conv1d``: depthwise causal conv1d over a padded batch.

``x [b, s, c]``, ``weight [c, 1, k]``, ``bias [c]`` or ``None``, ``activation`` ("silu" | "none", applied
after the bias) -> ``y [b, s, c]`` in x's dtype, zero left padding. Eager / CPU: ``F.conv1d`` in fp32
(validated). CUDA: the Triton prefill kernel, each batch row a packed sequence.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from trtllm_flash.ops.causal_conv.kernels import conv_prefill
from trtllm_flash.ops.causal_conv.reference import apply_activation
from trtllm_flash.ops.causal_conv.validation import check_source_inputs
from trtllm_flash.ops.dispatch import register_fast


@torch.library.custom_op("trtllm_flash::causal_conv1d", mutates_args=())
def causal_conv1d(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], activation: str) -> torch.Tensor:
    check_source_inputs(x, weight, bias, activation)
    k = weight.shape[-1]
    y = F.conv1d(
        F.pad(x.float().transpose(1, 2), (k - 1, 0)),
        weight.float(),
        bias.float() if bias is not None else None,
        groups=x.shape[-1],
    )
    return apply_activation(y, activation).transpose(1, 2).to(x.dtype)


@causal_conv1d.register_fake
def _causal_conv1d_fake(x, weight, bias, activation):
    return x.new_empty(x.shape)


def causal_conv1d_fast(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], activation: str) -> torch.Tensor:
    """The CUDA implementation (unvalidated); also runs on CPU tensors under ``TRITON_INTERPRET=1``."""
    b, s, c = x.shape
    x_flat = x.reshape(b * s, c).contiguous()
    y = torch.empty_like(x_flat)
    cu_seqlen = torch.arange(0, (b + 1) * s, s, dtype=torch.int32, device=x.device)
    conv_prefill(x_flat, weight.contiguous(), bias, y, cu_seqlen, b, s, activation)
    return y.view(b, s, c)


register_fast(causal_conv1d, causal_conv1d_fast)
