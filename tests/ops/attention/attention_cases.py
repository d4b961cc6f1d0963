"""Shared builders of the attention tests: whole-sequence histories, paged / ring caches, one flattened
step through a cached-attention implementation, and the reference output of a step's new tokens."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch

import trtllm_flash.ops.attention  # noqa: F401  (registers the ops)
from trtllm_flash.ops.attention import cached_attention_fast, masked_attention
from trtllm_flash.ops.attention.paged_layout import kv_locations, write_kv_
from trtllm_flash.ops.interface import window_pages
from trtllm_flash.ops.metadata import BatchMetadata, build_metadata

H, HKV, D = 6, 2, 24  # 3 query heads per kv head, head_dim not a power of two
SCALE = 0.2

IMPLS = {"torch": torch.ops.trtllm_flash.cached_attention, "triton": cached_attention_fast}
#: (atol, rtol) of an op's output against the fp32 reference on the same (rounded) inputs
TOLERANCE = {torch.float32: (2e-5, 2e-5), torch.bfloat16: (2e-2, 2e-2)}

History = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # q [L, h, d], k [L, hkv, d], v [L, hkv, d]


def histories(lengths: Sequence[int], dtype=torch.float32, seed=0, h=H, hkv=HKV, d=D) -> List[History]:
    g = torch.Generator().manual_seed(seed)
    return [tuple(torch.randn(n, heads, d, generator=g).to(dtype) for heads in (h, hkv, hkv)) for n in lengths]


def paged_cache(num_pages: int, page_size: int, dtype=torch.float32, hkv=HKV, d=D, fill=float("nan")) -> torch.Tensor:
    """A pool ``[num_pages, 2, hkv, page_size, d]`` filled with ``fill`` (NaN: any stale read shows)."""
    return torch.full((num_pages, 2, hkv, page_size, d), fill, dtype=dtype)


def ring_cache(num_slots: int, window: int, page_size: int, dtype=torch.float32, hkv=HKV, d=D, fill=float("nan")) -> torch.Tensor:
    return paged_cache(num_slots * window_pages(window, page_size), page_size, dtype, hkv, d, fill)


def page_rows(num_seqs: int, pages_each: int, num_pages: int, seed=0) -> List[List[int]]:
    """Distinct pages for every sequence, drawn at random from the pool without the sentinel page 0."""
    perm = (torch.randperm(num_pages - 1, generator=torch.Generator().manual_seed(seed)) + 1).tolist()
    if num_seqs * pages_each > len(perm):
        raise ValueError(f"a pool of {num_pages} pages cannot give {num_seqs} sequences {pages_each} pages each")
    return [perm[i * pages_each : (i + 1) * pages_each] for i in range(num_seqs)]


def store_prefix(cache: torch.Tensor, history: History, upto: int, row: Optional[List[int]], slot: int, window: int) -> None:
    """Write positions ``< upto`` of a history straight into the cache (a ring keeps only its newest tokens)."""
    page_size = cache.shape[3]
    first = max(0, upto - window_pages(window, page_size) * page_size) if window else 0
    pos = torch.arange(first, upto, device=cache.device)
    page_row = torch.tensor(row, device=cache.device) if window == 0 else None
    write_kv_(cache, *kv_locations(pos, page_row, slot, page_size, window), history[1][first:upto], history[2][first:upto])


def step_metadata(
    spans: Sequence[Tuple[int, int]], slots: Sequence[int], rows: Optional[Sequence[List[int]]], device="cpu"
) -> BatchMetadata:
    return build_metadata([n for _, n in spans], [p for p, _ in spans], list(slots), rows, device=device)


def run_step(
    impl,
    hist: Sequence[History],
    spans: Sequence[Tuple[int, int]],
    slots: Sequence[int],
    rows: Optional[Sequence[List[int]]],
    cache: torch.Tensor,
    window: int,
    decode_layout: bool = False,
) -> List[torch.Tensor]:
    """One flattened step: sequence ``i`` brings tokens ``p .. p+n-1`` of ``hist[i]`` for ``spans[i] = (p, n)``.
    Returns each sequence's output ``[n, h, d]``."""
    q, k, v = (torch.cat([hh[j][p : p + n] for hh, (p, n) in zip(hist, spans)])[None] for j in range(3))
    if decode_layout:
        q, k, v = (t.transpose(0, 1) for t in (q, k, v))
    m = step_metadata(spans, slots, rows, q.device)
    out = impl(q, k, v, m.batch_info_host, m.cu_seqlen, m.input_pos, m.slot_idx, m.page_table, cache, SCALE, window)
    assert out.shape == q.shape and out.dtype == q.dtype
    return list(out.reshape(-1, *out.shape[2:]).split([n for _, n in spans]))


def expected(history: History, span: Tuple[int, int], window: int) -> torch.Tensor:
    """Reference output ``[n, h, d]`` fp32 of tokens ``p .. p+n-1``: the whole history attended from scratch."""
    p, n = span
    q, k, v = history
    device = q.device
    return masked_attention(q[p : p + n], k[: p + n], v[: p + n], torch.arange(p, p + n, device=device), torch.arange(p + n, device=device), SCALE, window)


def assert_close(actual: torch.Tensor, reference: torch.Tensor, dtype: torch.dtype) -> None:
    atol, rtol = TOLERANCE[dtype]
    torch.testing.assert_close(actual.float(), reference, atol=atol, rtol=rtol)
