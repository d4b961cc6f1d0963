"""Naive fp32 references of causal GQA attention with an optional sliding window, written for clarity.

Window rule (the same everywhere): with ``sliding_window = w > 0`` a query at absolute position ``i``
sees the keys at positions ``i - w + 1 .. i`` (``w`` keys including itself); ``w = 0`` means every
key at a position ``<= i``.
"""
from __future__ import annotations

import torch


def visible_keys(q_pos: torch.Tensor, k_pos: torch.Tensor, sliding_window: int) -> torch.Tensor:
    """Bool mask ``[s_q, s_k]``: may the query at ``q_pos[a]`` see the key at ``k_pos[b]``."""
    delta = q_pos[:, None] - k_pos[None, :]
    mask = delta >= 0
    if sliding_window > 0:
        mask &= delta < sliding_window
    return mask


def masked_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    q_pos: torch.Tensor,
    k_pos: torch.Tensor,
    scale: float,
    sliding_window: int,
) -> torch.Tensor:
    """One sequence: ``q [s_q, h, d]`` at absolute positions ``q_pos [s_q]``, ``k, v [s_k, hkv, d]`` at
    ``k_pos [s_k]`` -> ``out [s_q, h, d]`` fp32. Dense scores, fp32 softmax; ``h % hkv == 0`` and query head
    ``j`` reads kv head ``j // (h // hkv)``. Every query must see at least one key."""
    group = q.shape[1] // k.shape[1]
    k = k.float().repeat_interleave(group, dim=1)
    v = v.float().repeat_interleave(group, dim=1)
    scores = torch.einsum("qhd,khd->hqk", q.float(), k) * scale
    mask = visible_keys(q_pos, k_pos, sliding_window)
    scores = scores.masked_fill(~mask, float("-inf"))
    return torch.einsum("hqk,khd->qhd", scores.softmax(dim=-1), v)


def attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, sliding_window: int) -> torch.Tensor:
    """Padded batch ``q [b, s, h, d]``, ``k, v [b, s, hkv, d]`` -> ``out [b, s, h, d]`` fp32, each row
    attending causally from position 0."""
    pos = torch.arange(q.shape[1], device=q.device)
    return torch.stack([masked_attention(q[i], k[i], v[i], pos, pos, scale, sliding_window) for i in range(q.shape[0])])
