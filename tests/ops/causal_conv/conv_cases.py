"""Shared builders of the causal-conv tests."""
from __future__ import annotations

import torch

from trtllm_flash.ops.metadata import BatchMetadata, build_metadata

C, K = 150, 4  # c not a power of two and more than one 128-channel block


def random_weights(c=C, k=K, dtype=torch.float32, seed=0, with_bias=True):
    g = torch.Generator().manual_seed(seed)
    weight = (torch.randn(c, 1, k, generator=g) / k**0.5).to(dtype)
    bias = torch.randn(c, generator=g).to(dtype) if with_bias else None
    return weight, bias


def random_x(s: int, b=1, c=C, dtype=torch.float32, seed=0) -> torch.Tensor:
    return torch.randn(b, s, c, generator=torch.Generator().manual_seed(seed)).to(dtype)


def flattened_batch(chunks, input_pos, slots, decode_layout=False):
    """Per-sequence ``[1, len_i, c]`` chunks -> ``[1, T, c]`` (or ``[B, 1, c]``) and the metadata."""
    x = torch.cat(list(chunks), dim=1)
    if decode_layout:
        x = x.transpose(0, 1)
    meta = build_metadata([c.shape[1] for c in chunks], list(input_pos), list(slots), device=x.device)
    return x, meta


def run_cached(impl, x, meta: BatchMetadata, weights, state, activation="silu"):
    weight, bias = weights
    return impl(x, weight, bias, meta.batch_info_host, meta.cu_seqlen, meta.slot_idx, meta.use_initial_states, state, activation)
