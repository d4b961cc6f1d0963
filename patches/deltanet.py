"""Export forward of the DeltaNet mixer (MODEL.md "DeltaNet"; attribute ``gla``, class ``DeltaNet`` in ours and in
the remote code).

``hidden [b, s, hidden]`` -> ``q/k/v_proj`` -> ``causal_conv1d(·, <q|k|v>_conv1d.weight, bias, "silu")``
(three conv nodes) -> heads ``[b, s, H, d]`` -> ``l2norm(q), l2norm(k)`` -> ``beta = sigmoid(b_proj(hidden))``
-> ``delta_rule(q, k, v, beta, d_k ** -0.5)`` -> ``o_norm`` per head -> ``o_proj``.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn

from trtllm_flash.patches.common import module_eps
from trtllm_flash.patches.registry import register_patch

#: fla's l2norm epsilon (the remote code normalises inside fla's kernel)
L2NORM_EPS = 1e-6


def _is_deltanet(module: nn.Module) -> bool:
    names = ("q_proj", "k_proj", "v_proj", "b_proj", "q_conv1d", "k_conv1d", "v_conv1d", "o_norm", "o_proj")
    return all(hasattr(module, name) for name in names) and not hasattr(module, "g_proj")


def _conv(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    bias: Optional[torch.Tensor] = getattr(conv, "bias", None)
    return torch.ops.trtllm_flash.causal_conv1d(x, conv.weight, bias, "silu")


@register_patch("deltanet", ("DeltaNet", "NemotronFlashDeltaNet"), applies=_is_deltanet)
def deltanet_forward(self: nn.Module, hidden_states: torch.Tensor, *args, **kwargs):
    b, s, _ = hidden_states.shape
    num_heads = self.b_proj.weight.shape[0]
    q = _conv(self.q_conv1d, self.q_proj(hidden_states)).reshape(b, s, num_heads, -1)
    k = _conv(self.k_conv1d, self.k_proj(hidden_states)).reshape(b, s, num_heads, -1)
    v = _conv(self.v_conv1d, self.v_proj(hidden_states)).reshape(b, s, num_heads, -1)
    q = torch.ops.trtllm_flash.l2norm(q, L2NORM_EPS)
    k = torch.ops.trtllm_flash.l2norm(k, L2NORM_EPS)
    beta = torch.sigmoid(self.b_proj(hidden_states))
    o = torch.ops.trtllm_flash.delta_rule(q, k, v, beta, q.shape[-1] ** -0.5)
    o = torch.ops.trtllm_flash.rms_norm(o, self.o_norm.weight, module_eps(self.o_norm))
    return self.o_proj(o.reshape(b, s, -1))
