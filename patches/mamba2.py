"""Export forward of the Mamba2 mixer (MODEL.md "Mamba2"; ours and the remote code's ``NemotronFlashMamba2`` /
``Mamba2`` share the layout).

``hidden [b, s, hidden]`` -> ``in_proj`` -> split ``[z (d_inner), xBC (conv_dim), dt (H)]`` ->
``causal_conv1d(xBC, conv1d.weight, conv1d.bias, "silu")`` -> split ``[x, B, C]`` ->
``ssm(x [b,s,H,P], dt, A = -exp(A_log.float()), B [b,s,G,N], C, D, dt_bias, 0, inf, chunk_size)`` ->
``rms_norm_gated(y, norm.weight, z, eps, d_inner / G)`` -> ``out_proj``. ``A`` is written as
``-exp(A_log.float())`` so that ``fuse_mamba_a_log`` folds it.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from trtllm_flash.patches.common import module_eps
from trtllm_flash.patches.registry import register_patch

#: AutoDeploy's chunk size for this model (256 crashed its kernel); used when the module has none
DEFAULT_CHUNK_SIZE = 128


def _is_mamba2(module: nn.Module) -> bool:
    return all(hasattr(module, name) for name in ("in_proj", "conv1d", "A_log", "D", "dt_bias", "norm", "out_proj"))


@register_patch("mamba2", ("NemotronFlashMamba2", "Mamba2"), applies=_is_mamba2)
def mamba2_forward(self: nn.Module, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    b, s, _ = hidden_states.shape
    num_heads = self.A_log.shape[0]
    d_inner = self.out_proj.weight.shape[1]
    conv_dim = self.conv1d.weight.shape[0]
    num_groups = int(getattr(self, "ngroups", 1))
    group_state = (conv_dim - d_inner) // 2
    d_state = group_state // num_groups
    z, xbc, dt = torch.split(self.in_proj(hidden_states), [d_inner, conv_dim, num_heads], dim=-1)
    xbc = torch.ops.trtllm_flash.causal_conv1d(xbc, self.conv1d.weight, self.conv1d.bias, "silu")
    x, B, C = torch.split(xbc, [d_inner, group_state, group_state], dim=-1)
    A = -torch.exp(self.A_log.float())
    dt_min, dt_max = (float(v) for v in getattr(self, "dt_limit", (0.0, float("inf"))))
    y = torch.ops.trtllm_flash.ssm(
        x.reshape(b, s, num_heads, d_inner // num_heads),
        dt,
        A,
        B.reshape(b, s, num_groups, d_state),
        C.reshape(b, s, num_groups, d_state),
        self.D,
        self.dt_bias,
        dt_min,
        dt_max,
        int(getattr(self, "chunk_size", DEFAULT_CHUNK_SIZE)),
    )
    y = torch.ops.trtllm_flash.rms_norm_gated(
        y.reshape(b, s, d_inner), self.norm.weight, z, module_eps(self.norm), d_inner // num_groups
    )
    return self.out_proj(y)
