"""DeltaNet mixer (attribute ``gla``): the plain delta rule (no decay gate) with short convs and per-head norms."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn

from trtllm_flash.config import NemotronFlashConfig
from trtllm_flash.modeling.cache import DeltaNetState, NemotronFlashCache
from trtllm_flash.modeling.conv import depthwise_conv1d, short_conv
from trtllm_flash.modeling.norms import RMSNorm, l2norm

#: eps of the per-head output norm
O_NORM_EPS = 1e-5
CONV_SIZE = 4


def delta_rule_scan(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor, scale: float,
                    state: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Delta rule, one token at a time, fp32 (fla's state layout ``S [b, h, dk, dv]``).

    ``q, k [b, s, h, dk]`` (L2-normalised), ``v [b, s, h, dv]``, ``beta [b, s, h]``. Per token:
    ``S = S + k (beta (v - S^T k))^T``; ``o = S^T (scale q)``. Returns ``o [b, s, h, dv]`` fp32 and the final state.
    """
    q, k, v, beta = q.float() * scale, k.float(), v.float(), beta.float()
    outputs = []
    for t in range(q.shape[1]):
        k_t = k[:, t]
        update = beta[:, t, :, None] * (v[:, t] - torch.einsum("bhkv,bhk->bhv", state, k_t))
        state = state + k_t[..., :, None] * update[..., None, :]
        outputs.append(torch.einsum("bhkv,bhk->bhv", state, q[:, t]))
    return torch.stack(outputs, dim=1), state


class DeltaNet(nn.Module):
    """``hidden [b, s, hidden]`` -> ``q/k/v_proj`` -> short convs ``q/k/v_conv1d`` (kernel 4, no bias) + SiLU ->
    heads ``[b, s, H, d]`` -> L2-normalised q, k -> ``beta = sigmoid(b_proj(hidden))`` -> delta rule with scale
    ``d ** -0.5`` -> per-head ``o_norm`` -> ``o_proj``. H = num_attention_heads, d = hidden / H."""

    def __init__(self, config: NemotronFlashConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        hidden = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = config.deltanet_head_dim
        self.q_proj = nn.Linear(hidden, hidden, bias=False)
        self.k_proj = nn.Linear(hidden, hidden, bias=False)
        self.v_proj = nn.Linear(hidden, hidden, bias=False)
        self.b_proj = nn.Linear(hidden, self.num_heads, bias=False)
        self.q_conv1d = short_conv(hidden, CONV_SIZE, bias=False)
        self.k_conv1d = short_conv(hidden, CONV_SIZE, bias=False)
        self.v_conv1d = short_conv(hidden, CONV_SIZE, bias=False)
        self.o_norm = RMSNorm(self.head_dim, eps=O_NORM_EPS)
        self.o_proj = nn.Linear(hidden, hidden, bias=False)

    def forward(self, hidden_states: torch.Tensor, cache: Optional[NemotronFlashCache] = None) -> torch.Tensor:
        """``hidden [b, s, hidden]`` -> ``[b, s, hidden]``; with ``cache`` continues (and updates) its state."""
        b, s, _ = hidden_states.shape
        state: Optional[DeltaNetState] = cache.layers[self.layer_idx] if cache is not None else None
        q, q_window = depthwise_conv1d(self.q_conv1d, self.q_proj(hidden_states), state.q_window if state else None)
        k, k_window = depthwise_conv1d(self.k_conv1d, self.k_proj(hidden_states), state.k_window if state else None)
        v, v_window = depthwise_conv1d(self.v_conv1d, self.v_proj(hidden_states), state.v_window if state else None)
        q = l2norm(q.view(b, s, self.num_heads, self.head_dim))
        k = l2norm(k.view(b, s, self.num_heads, self.head_dim))
        v = v.view(b, s, self.num_heads, self.head_dim)
        beta = torch.sigmoid(self.b_proj(hidden_states))
        recurrent = state.recurrent if state is not None else hidden_states.new_zeros(
            b, self.num_heads, self.head_dim, self.head_dim, dtype=torch.float32)
        o, recurrent = delta_rule_scan(q, k, v, beta, self.head_dim ** -0.5, recurrent)
        if cache is not None:
            cache.layers[self.layer_idx] = DeltaNetState(q_window, k_window, v_window, recurrent)
        o = self.o_norm(o.to(hidden_states.dtype))
        return self.o_proj(o.reshape(b, s, -1))
