"""Mamba2 mixer (``mamba``): in_proj -> causal conv over xBC -> selective state-space scan -> gated norm -> out_proj.

One group (``ngroups = 1``), ``dt`` limit (0, inf). The scan is the plain token-by-token recurrence in fp32
(``chunk_size`` is only a kernel detail of the fast paths; kept as an attribute for the export patch).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from trtllm_flash.config import NemotronFlashConfig
from trtllm_flash.modeling.cache import MambaState, NemotronFlashCache
from trtllm_flash.modeling.conv import depthwise_conv1d, short_conv
from trtllm_flash.modeling.norms import RMSNormGated

#: eps of the gated RMSNorm inside the mixer
MAMBA_NORM_EPS = 1e-5


def ssm_scan(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
             D: torch.Tensor, state: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Selective scan, one token at a time, fp32.

    ``x [b, s, h, p]``, ``dt [b, s, h]`` (already softplus'ed), ``A, D [h]``, ``B, C [b, s, n]`` (one group),
    ``state [b, h, p, n]`` fp32. Per token: ``S = exp(dt A) S + dt x B^T``; ``y = S C + D x``.
    Returns ``y [b, s, h, p]`` fp32 and the final state ``[b, h, p, n]`` fp32.
    """
    x, dt, B, C = x.float(), dt.float(), B.float(), C.float()
    decay = torch.exp(dt * A.float())  # [b, s, h]
    ys = []
    for t in range(x.shape[1]):
        update = (dt[:, t, :, None] * x[:, t])[..., None] * B[:, t, None, None, :]  # [b, h, p, n]
        state = decay[:, t, :, None, None] * state + update
        ys.append(torch.einsum("bhpn,bn->bhp", state, C[:, t]))
    y = torch.stack(ys, dim=1) + D.float()[:, None] * x
    return y, state


class NemotronFlashMamba2(nn.Module):
    """``hidden [b, s, hidden]`` -> ``in_proj`` -> split ``[z (d_inner), xBC (d_inner + 2N), dt (H)]`` ->
    depthwise causal ``conv1d`` (bias) + SiLU -> split ``x [b,s,H,P]``, ``B, C [b,s,N]`` -> SSM with
    ``A = -exp(A_log)``, ``dt = softplus(dt + dt_bias)``, skip ``D`` -> ``norm(y, z)`` -> ``out_proj``."""

    def __init__(self, config: NemotronFlashConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.d_inner = config.mamba_d_inner
        self.d_state = config.mamba_d_state
        self.num_heads = config.mamba_num_heads
        self.headdim = config.mamba2_headdim
        self.ngroups = 1
        self.dt_limit = (0.0, float("inf"))
        self.chunk_size = 128
        conv_dim = config.mamba_conv_dim
        self.in_proj = nn.Linear(config.hidden_size, self.d_inner + conv_dim + self.num_heads, bias=False)
        self.conv1d = short_conv(conv_dim, config.mamba_d_conv, bias=True)
        self.dt_bias = nn.Parameter(torch.zeros(self.num_heads))
        self.A_log = nn.Parameter(torch.zeros(self.num_heads))
        self.D = nn.Parameter(torch.ones(self.num_heads))
        self.norm = RMSNormGated(self.d_inner, eps=MAMBA_NORM_EPS)
        self.out_proj = nn.Linear(self.d_inner, config.hidden_size, bias=False)

    def split_projection(self, hidden_states: torch.Tensor):
        """``in_proj(hidden)`` split into ``z [b,s,d_inner]``, ``xBC [b,s,conv_dim]``, ``dt [b,s,H]``."""
        conv_dim = self.conv1d.weight.shape[0]
        return torch.split(self.in_proj(hidden_states), [self.d_inner, conv_dim, self.num_heads], dim=-1)

    def forward(self, hidden_states: torch.Tensor, cache: Optional[NemotronFlashCache] = None) -> torch.Tensor:
        """``hidden [b, s, hidden]`` -> ``[b, s, hidden]``; with ``cache`` continues (and updates) its state."""
        b, s, _ = hidden_states.shape
        state: Optional[MambaState] = cache.layers[self.layer_idx] if cache is not None else None
        z, xbc, dt = self.split_projection(hidden_states)
        xbc, conv_window = depthwise_conv1d(self.conv1d, xbc, state.conv_window if state is not None else None)
        x, B, C = torch.split(xbc, [self.d_inner, self.d_state, self.d_state], dim=-1)
        dt = F.softplus(dt.float() + self.dt_bias.float())
        A = -torch.exp(self.A_log.float())
        ssm = state.ssm if state is not None else hidden_states.new_zeros(
            b, self.num_heads, self.headdim, self.d_state, dtype=torch.float32)
        y, ssm = ssm_scan(x.view(b, s, self.num_heads, self.headdim), dt, A, B, C, self.D, ssm)
        if cache is not None:
            cache.layers[self.layer_idx] = MambaState(conv_window, ssm)
        y = self.norm(y.reshape(b, s, self.d_inner).to(hidden_states.dtype), z)
        return self.out_proj(y)
