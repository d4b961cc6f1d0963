"""Export forward of the attention mixer (MODEL.md "Attention"; ours and the remote code's
``NemotronFlashAttention`` / ``NemotronFlashFlashAttention2`` / ``NemotronFlashFusedMHA`` share the layout).

``hidden [b, s, hidden]`` -> ``q/k/v_proj`` -> heads ``[b, s, h, d]`` (bsnd) -> optional ``q_norm`` / ``k_norm``
per head -> RoPE (rotate-half, fp32 cos/sin from the module's rotary embedding; ONE ``rope(q, k, cos, sin)``
node for q and k) -> ``attention(q, k, v, scale, sliding_window)`` -> ``o_proj``.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn

import trtllm_flash.ops.rope  # noqa: F401  (registers torch.ops.trtllm_flash.rope)
from trtllm_flash.patches.registry import register_patch

ATTENTION_CLASSES = ("NemotronFlashAttention", "NemotronFlashFlashAttention2", "NemotronFlashFusedMHA")


def _is_attention(module: nn.Module) -> bool:
    return all(hasattr(module, name) for name in ("q_proj", "k_proj", "v_proj", "o_proj"))


def _cos_sin(module: nn.Module, x: torch.Tensor, position_ids: torch.Tensor) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
    rotary = getattr(module, "rotary_emb", None)
    if rotary is None:
        return None
    return rotary(x, position_ids)


def _window(module: nn.Module) -> int:
    window = getattr(module, "sliding_window", None)
    if isinstance(window, int) and not isinstance(window, bool):
        return window
    config, layer = getattr(module, "config", None), getattr(module, "layer_idx", None)
    if config is not None and layer is not None and hasattr(config, "layer_window"):
        return int(config.layer_window(layer))
    return 0


@register_patch("attention", ATTENTION_CLASSES, applies=_is_attention)
def attention_forward(self: nn.Module, hidden_states: torch.Tensor, position_ids: Optional[torch.Tensor] = None, *args, **kwargs):
    b, s, _ = hidden_states.shape
    num_kv_heads = int(getattr(self, "num_key_value_heads", None) or getattr(self, "num_kv_heads"))
    head_dim = self.k_proj.weight.shape[0] // num_kv_heads
    v_head_dim = self.v_proj.weight.shape[0] // num_kv_heads
    q = self.q_proj(hidden_states).reshape(b, s, -1, head_dim)
    k = self.k_proj(hidden_states).reshape(b, s, num_kv_heads, head_dim)
    v = self.v_proj(hidden_states).reshape(b, s, num_kv_heads, v_head_dim)
    if getattr(self, "q_norm", None) is not None:
        q, k = self.q_norm(q), self.k_norm(k)
    if position_ids is None:
        position_ids = torch.arange(s, device=hidden_states.device).expand(b, s)
    cos_sin = _cos_sin(self, q, position_ids)
    if cos_sin is not None:
        cos, sin = cos_sin
        # a rotary embedding may return [1, s, d] tables; the kernel reads the expanded view through stride 0
        q, k = torch.ops.trtllm_flash.rope(q, k, cos.float().expand(b, s, -1), sin.float().expand(b, s, -1))
    o = torch.ops.trtllm_flash.attention(q, k, v, head_dim**-0.5, _window(self))
    return self.o_proj(o.reshape(b, s, -1))
