"""Naive depthwise causal conv1d, one token at a time in fp32: the ground truth of the fast paths.

With ``window_t = [x_{t-k+1}, ..., x_t]`` (inputs before the sequence start come from the initial
window, zeros by default): ``y_t[c] = act(sum_j weight[c, 0, j] * window_t[j][c] + bias[c])``.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F


def apply_activation(y: torch.Tensor, activation: str) -> torch.Tensor:
    """``"silu"`` or ``"none"``."""
    return F.silu(y) if activation == "silu" else y


def conv_step(
    window: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], activation: str
) -> Tuple[torch.Tensor, torch.Tensor]:
    """One token for ``N`` sequences: ``window [N, c, k-1]`` (the last k-1 inputs, oldest first), ``x [N, c]``;
    returns ``(y [N, c]`` fp32, new window ``[N, c, k-1]`` fp32); ``window`` is not modified."""
    full = torch.cat([window.float(), x.float()[..., None]], dim=-1)  # [N, c, k]
    y = (full * weight.float()[:, 0]).sum(-1)
    if bias is not None:
        y = y + bias.float()
    return apply_activation(y, activation), full[..., 1:]


def causal_conv1d_reference(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    activation: str,
    initial_window: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """``x [b, s, c]``, ``weight [c, 1, k]``, ``bias [c]`` or ``None``, ``initial_window [b, c, k-1]`` (zeros
    when ``None``). Returns ``y [b, s, c]`` in x's dtype and the final window ``[b, c, k-1]`` in x's dtype."""
    b, s, c = x.shape
    k = weight.shape[-1]
    window = torch.zeros(b, c, k - 1, device=x.device) if initial_window is None else initial_window.float()
    y = torch.empty(b, s, c, dtype=torch.float32, device=x.device)
    for t in range(s):
        y[:, t], window = conv_step(window, x[:, t], weight, bias, activation)
    return y.to(x.dtype), window.to(x.dtype)
