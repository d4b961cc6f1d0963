"""Shared builders of the Mamba2 SSM tests: random inputs in the model's ranges and flattened batches."""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch

from trtllm_flash.ops.metadata import BatchMetadata, build_metadata

# small odd shapes: p = 12 and n = 10 are not powers of two; 2 groups over 4 heads
H, P, G, N = 4, 12, 2, 10
# finite limits that both bite: softplus(dt + dt_bias) of random_tokens / random_params spans ~5e-4 .. 1
# (test_mamba_source checks that each clamps some values)
DT_MIN, DT_MAX = 0.005, 0.1

Tokens = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # x, dt, B, C


def random_params(h: int = H, seed: int = 0, device="cpu"):
    """``A (= -exp(A_log)), D, dt_bias [h]`` fp32 in the model's ranges."""
    g = torch.Generator().manual_seed(seed)
    A = -torch.exp(torch.rand(h, generator=g) * 2.5)
    D = torch.randn(h, generator=g)
    dt_bias = torch.log(torch.expm1(torch.rand(h, generator=g) * 0.1 + 0.001))
    return tuple(t.to(device) for t in (A, D, dt_bias))


def random_tokens(b: int, s: int, h=H, p=P, g=G, n=N, dtype=torch.float32, seed=0, device="cpu") -> Tokens:
    """``x [b, s, h, p]``, ``dt [b, s, h]``, ``B, C [b, s, g, n]``."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, s, h, p, generator=gen)
    dt = torch.randn(b, s, h, generator=gen)
    B = torch.randn(b, s, g, n, generator=gen) / n**0.5
    C = torch.randn(b, s, g, n, generator=gen) / n**0.5
    return tuple(t.to(device=device, dtype=dtype) for t in (x, dt, B, C))


def token_range(tokens: Tokens, start: int, end: int) -> Tokens:
    return tuple(t[:, start:end] for t in tokens)


def flattened_batch(chunks: Sequence[Tokens], input_pos: Sequence[int], slots: Sequence[int], decode_layout=False):
    """Concatenate per-sequence chunks ``[1, len_i, ...]`` into ``[1, T, ...]`` (or ``[B, 1, ...]``)."""
    joined = [torch.cat([c[i] for c in chunks], dim=1) for i in range(4)]
    if decode_layout:
        joined = [t.transpose(0, 1) for t in joined]
    meta = build_metadata([c[0].shape[1] for c in chunks], list(input_pos), list(slots), device=chunks[0][0].device)
    return tuple(joined), meta


def run_cached(impl, tokens: Tokens, params, meta: BatchMetadata, state: torch.Tensor, chunk_size=8) -> torch.Tensor:
    x, dt, B, C = tokens
    A, D, dt_bias = params
    return impl(
        x, dt, A, B, C, D, dt_bias, meta.batch_info_host, meta.cu_seqlen, meta.slot_idx, meta.use_initial_states,
        state, DT_MIN, DT_MAX, chunk_size,
    )


def split_tokens(y: torch.Tensor, lengths: List[int]) -> List[torch.Tensor]:
    """Flattened ``[1, T, h, p]`` or ``[B, 1, h, p]`` -> one ``[len_i, h, p]`` per sequence."""
    return list(y.reshape(-1, *y.shape[2:]).split(lengths))
