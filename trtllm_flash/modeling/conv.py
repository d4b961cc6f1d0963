"""Depthwise causal short convolution with a carried window (DeltaNet's q/k/v convs, Mamba2's xBC conv)."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


def depthwise_conv1d(conv: nn.Conv1d, x: torch.Tensor, window: Optional[torch.Tensor] = None
                     ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Causal depthwise conv then SiLU.

    ``x [b, s, c]``; ``conv.weight [c, 1, k]``, ``conv.bias [c]`` or None; ``window [b, c, k-1]``: the k-1 inputs
    before ``x`` (oldest first; zeros when None). Returns ``y [b, s, c]`` (x's dtype) and the new window
    ``[b, c, k-1]`` (the last k-1 inputs, x's dtype).
    """
    b, s, c = x.shape
    k = conv.weight.shape[-1]
    if window is None:
        window = x.new_zeros(b, c, k - 1)
    padded = torch.cat([window.to(x.dtype), x.transpose(1, 2)], dim=-1)  # [b, c, k-1+s]
    y = F.conv1d(padded, conv.weight, conv.bias, groups=c)  # [b, c, s]
    return F.silu(y).transpose(1, 2), padded[..., padded.shape[-1] - (k - 1):]


def short_conv(channels: int, kernel_size: int, bias: bool) -> nn.Conv1d:
    """An ``nn.Conv1d`` holding a depthwise kernel: ``weight [channels, 1, kernel_size]`` (+ ``bias [channels]``)."""
    return nn.Conv1d(channels, channels, kernel_size, groups=channels, bias=bias, padding=kernel_size - 1)
