"""Shared builders of the delta-rule tests: random inputs in the model's ranges and flattened batches."""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F

from trtllm_flash.ops.metadata import BatchMetadata, build_metadata

#: DeltaNet's q/k l2norm eps (what the export passes to ``l2norm``)
L2NORM_EPS = 1e-6

Inputs = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def random_inputs(b: int, s: int, h: int, dk: int, dv: int, dtype=torch.float32, device="cpu", seed=0) -> Inputs:
    """``q, k [b, s, h, dk]`` L2-normalised, ``v [b, s, h, dv]`` ~ N(0, 1), ``beta [b, s, h]`` in (0, 1)."""
    g = torch.Generator().manual_seed(seed)
    q = F.normalize(torch.randn(b, s, h, dk, generator=g), dim=-1)
    k = F.normalize(torch.randn(b, s, h, dk, generator=g), dim=-1)
    v = torch.randn(b, s, h, dv, generator=g)
    beta = torch.sigmoid(torch.randn(b, s, h, generator=g))
    return tuple(t.to(device=device, dtype=dtype) for t in (q, k, v, beta))


def raw_inputs(b: int, s: int, h: int, dk: int, dv: int, dtype=torch.float32, device="cpu", seed=0) -> Inputs:
    """What DeltaNet feeds its prologue: ``q, k [b, s, h, dk]`` unnormalised (rows of norm ~ 2 sqrt(dk)),
    ``v [b, s, h, dv]`` ~ N(0, 1), beta logits ``[b, s, h]`` ~ N(0, 4)."""
    g = torch.Generator().manual_seed(seed)
    q, k = (2 * torch.randn(b, s, h, dk, generator=g) for _ in range(2))
    v = torch.randn(b, s, h, dv, generator=g)
    b_logits = 2 * torch.randn(b, s, h, generator=g)
    return tuple(t.to(device=device, dtype=dtype) for t in (q, k, v, b_logits))


def prologue(inputs: Inputs, eps: float = L2NORM_EPS) -> Inputs:
    """The unfused graph's prologue on ``raw_inputs``: ``l2norm(q), l2norm(k), v, sigmoid(b)``, each in its
    input's dtype (the l2norm op, so its Triton kernel on CUDA)."""
    q, k, v, b_logits = inputs
    return torch.ops.trtllm_flash.l2norm(q, eps), torch.ops.trtllm_flash.l2norm(k, eps), v, torch.sigmoid(b_logits)


def token_range(inputs: Inputs, start: int, end: int) -> Inputs:
    """Tokens ``start..end`` of a single sequence ``[1, s, ...]``."""
    return tuple(t[:, start:end] for t in inputs)


def flattened_batch(
    chunks: Sequence[Inputs], input_pos: Sequence[int], slots: Sequence[int], decode_layout: bool = False
) -> Tuple[Inputs, BatchMetadata]:
    """Concatenate per-sequence chunks ``[1, len_i, ...]`` (prefills first, then one-token decodes) into
    ``[1, T, ...]`` — or ``[B, 1, ...]`` when ``decode_layout`` — with the matching metadata."""
    joined = [torch.cat([c[i] for c in chunks], dim=1) for i in range(4)]
    if decode_layout:
        joined = [t.transpose(0, 1) for t in joined]
    meta = build_metadata([c[0].shape[1] for c in chunks], list(input_pos), list(slots), device=chunks[0][0].device)
    return tuple(joined), meta


def run_cached(
    inputs: Inputs, meta: BatchMetadata, delta_state: torch.Tensor, scale: float, *options, op=None
) -> torch.Tensor:
    """``cached_delta_rule`` (or ``op``, same signature) on a flattened batch; ``options``:
    ``qk_l2norm_eps, beta_sigmoid``."""
    metadata = (meta.batch_info_host, meta.cu_seqlen, meta.slot_idx, meta.use_initial_states)
    return (op or torch.ops.trtllm_flash.cached_delta_rule)(*inputs, *metadata, delta_state, scale, *options)


def split_tokens(o: torch.Tensor, lengths: List[int]) -> List[torch.Tensor]:
    """Flattened output ``[1, T, h, dv]`` or ``[B, 1, h, dv]`` -> one ``[len_i, h, dv]`` per sequence."""
    return list(o.reshape(-1, *o.shape[2:]).split(lengths))
