"""Attention mixer (``self_attn``): causal GQA with optional q/k RMSNorm, RoPE and a sliding window."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn

from trtllm_flash.config import NemotronFlashConfig
from trtllm_flash.modeling.cache import AttentionState, NemotronFlashCache
from trtllm_flash.modeling.norms import RMSNorm
from trtllm_flash.modeling.rope import RotaryEmbedding, apply_rope

#: the remote code builds q_norm / k_norm without an eps argument, so they use its RMSNorm default
QK_NORM_EPS = 1e-6


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q_start: int, k_start: int, scale: float,
           sliding_window: int) -> torch.Tensor:
    """Causal GQA over sequence indices, fp32 math.

    ``q [b, s, h, d]`` for sequence indices ``q_start ..``, ``k [b, t, hkv, d]`` and ``v [b, t, hkv, dv]`` for
    ``k_start ..``. Query i sees key j when ``j <= i`` and, with ``sliding_window = w > 0``, ``j > i - w``.
    Query head ``j`` reads kv head ``j // (h // hkv)``. Returns ``[b, s, h, dv]`` in q's dtype.
    """
    group = q.shape[2] // k.shape[2]
    kf = k.float().repeat_interleave(group, dim=2)
    vf = v.float().repeat_interleave(group, dim=2)
    scores = torch.einsum("bqhd,bkhd->bhqk", q.float(), kf) * scale
    q_idx = torch.arange(q.shape[1], device=q.device) + q_start
    k_idx = torch.arange(k.shape[1], device=q.device) + k_start
    delta = q_idx[:, None] - k_idx[None, :]
    visible = delta >= 0
    if sliding_window > 0:
        visible &= delta < sliding_window
    scores = scores.masked_fill(~visible, float("-inf"))
    return torch.einsum("bhqk,bkhd->bqhd", scores.softmax(dim=-1), vf).to(q.dtype)


class NemotronFlashAttention(nn.Module):
    """``hidden [b, s, hidden]`` -> q/k/v projections -> heads (bsnd) -> optional per-head q/k RMSNorm -> RoPE ->
    causal (sliding-window) GQA with scale ``head_dim ** -0.5`` -> ``o_proj``."""

    def __init__(self, config: NemotronFlashConfig, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        self.num_key_value_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        self.value_head_dim = config.value_head_dim
        self.sliding_window = config.layer_window(layer_idx)
        hidden = config.hidden_size
        self.q_proj = nn.Linear(hidden, self.num_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(hidden, self.num_key_value_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(hidden, self.num_key_value_heads * self.value_head_dim, bias=False)
        self.o_proj = nn.Linear(self.num_heads * self.value_head_dim, hidden, bias=False)
        if config.kq_norm == "rms":
            self.q_norm = RMSNorm(self.head_dim, eps=QK_NORM_EPS)
            self.k_norm = RMSNorm(self.head_dim, eps=QK_NORM_EPS)
        else:
            self.q_norm = self.k_norm = None
        self.rotary_emb = (
            RotaryEmbedding(self.head_dim, config.rope_theta, config.rope_type, config.max_position_embeddings,
                            config.orig_max_position_embeddings)
            if config.rope else None
        )

    def project(self, hidden_states: torch.Tensor, position_ids: torch.Tensor):
        """``hidden [b, s, hidden]`` -> ``q [b, s, h, d]``, ``k [b, s, hkv, d]``, ``v [b, s, hkv, dv]``
        (q/k normalised and rotated)."""
        b, s, _ = hidden_states.shape
        q = self.q_proj(hidden_states).view(b, s, self.num_heads, self.head_dim)
        k = self.k_proj(hidden_states).view(b, s, self.num_key_value_heads, self.head_dim)
        v = self.v_proj(hidden_states).view(b, s, self.num_key_value_heads, self.value_head_dim)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if self.rotary_emb is not None:
            cos, sin = self.rotary_emb(q, position_ids)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        return q, k, v

    def forward(self, hidden_states: torch.Tensor, position_ids: torch.Tensor,
                cache: Optional[NemotronFlashCache] = None) -> torch.Tensor:
        """``hidden [b, s, hidden]``, ``position_ids [b, s]`` (RoPE positions) -> ``[b, s, hidden]``.

        With ``cache`` the tokens continue the cached sequences (keys of earlier tokens come from the cache,
        which is updated in place).
        """
        b, s, _ = hidden_states.shape
        q, k, v = self.project(hidden_states, position_ids)
        state = cache.layers[self.layer_idx] if cache is not None else None
        q_start = k_start = 0
        if state is not None:
            q_start, k_start = state.end, state.start
            k, v = torch.cat([state.key, k], dim=1), torch.cat([state.value, v], dim=1)
        o = attend(q, k, v, q_start, k_start, self.head_dim ** -0.5, self.sliding_window)
        if cache is not None:
            cache.layers[self.layer_idx] = self.kept_state(k, v, k_start)
        return self.o_proj(o.reshape(b, s, -1))

    def kept_state(self, k: torch.Tensor, v: torch.Tensor, k_start: int) -> AttentionState:
        """The keys/values a later query may still see: all of them, or the last ``window - 1``."""
        if self.sliding_window <= 0:
            return AttentionState(k, v, k_start)
        keep = min(self.sliding_window - 1, k.shape[1])
        drop = k.shape[1] - keep
        return AttentionState(k[:, drop:], v[:, drop:], k_start + drop)
