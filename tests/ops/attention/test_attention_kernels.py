"""The Triton kernels called one by one on CPU tensors (interpreted): prefill with small tiles so queries
and keys span several blocks, split-K decode with several splits, and the K/V store."""
import pytest
import torch
from attention_cases import SCALE, assert_close, expected, histories, page_rows, paged_cache, ring_cache, step_metadata, store_prefix

from trtllm_flash.ops.attention.paged_layout import kv_locations, write_kv_
from trtllm_flash.ops.attention.triton_decode import paged_decode
from trtllm_flash.ops.attention.triton_paging import store_kv_
from trtllm_flash.ops.attention.triton_prefill import paged_prefill
from trtllm_flash.ops.interface import window_pages


def flat(hist, spans, j):
    return torch.cat([h[j][p : p + n] for h, (p, n) in zip(hist, spans)])


def filled_cache(hist, spans, slots, rows, window, num_pages, page_size, dtype):
    cache = paged_cache(num_pages, page_size, dtype) if window == 0 else ring_cache(len(slots) + 1, window, page_size, dtype)
    for i, (p, _) in enumerate(spans):
        store_prefix(cache, hist[i], p, rows[i] if rows else None, slots[i], window)
    return cache


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("window", [0, 9])
def test_prefill_kernel_with_small_tiles(dtype, window):
    spans = [(0, 37), (29, 21), (3, 2)]
    slots = [2, 0, 1]
    hist = histories([p + n for p, n in spans], dtype, seed=7)
    rows = page_rows(3, 11, 40) if window == 0 else None
    cache = filled_cache(hist, spans, slots, rows, window, 40, 5, dtype)
    before = cache.clone()
    m = step_metadata(spans, slots, rows)
    q, k, v = (flat(hist, spans, j) for j in range(3))
    out = torch.full_like(q, float("nan"))
    paged_prefill(q, k, v, out, cache, m.cu_seqlen, m.input_pos, m.slot_idx, m.page_table, 3, 37, SCALE, window, block_m=16, block_n=8)
    for o, h, span in zip(out.split([n for _, n in spans]), hist, spans):
        assert_close(o, expected(h, span, window), dtype)
    torch.testing.assert_close(cache, before, equal_nan=True, atol=0, rtol=0)  # prefill only reads


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("window", [0, 13])
@pytest.mark.parametrize("num_splits", [1, 3, 8])
def test_split_k_decode(dtype, window, num_splits):
    # more splits than key blocks for the short rows: empty splits must drop out of the merge
    spans = [(40, 1), (0, 1), (17, 1), (6, 1)]
    slots = [3, 1, 0, 2]
    hist = histories([p + n for p, n in spans], dtype, seed=8)
    rows = page_rows(4, 9, 40) if window == 0 else None
    cache = filled_cache(hist, [(p + 1, 0) for p, _ in spans], slots, rows, window, 40, 5, dtype)
    m = step_metadata(spans, slots, rows)
    q = flat(hist, spans, 0)
    out = torch.full_like(q, float("nan"))
    paged_decode(q, out, cache, m.input_pos, m.slot_idx, m.page_table, SCALE, window, num_splits=num_splits, block_n=4)
    for o, h, span in zip(out.split(1), hist, spans):
        assert_close(o, expected(h, span, window), dtype)


def store_new_tokens_torch(cache, history, span, row, slot, window):
    """Positions ``p .. p+n-1`` (a ring keeps the newest ring-full) written through the torch layout."""
    (p, n), page_size = span, cache.shape[3]
    first = max(p, p + n - window_pages(window, page_size) * page_size) if window else p
    pos = torch.arange(first, p + n)
    page_row = torch.tensor(row) if window == 0 else None
    write_kv_(cache, *kv_locations(pos, page_row, slot, page_size, window), history[1][first : p + n], history[2][first : p + n])


@pytest.mark.parametrize("window", [0, 4])
def test_store_kernel_matches_torch_layout(window):
    page_size = 3
    spans = [(2, 20), (0, 5), (8, 1)]  # the first chunk is longer than window 4's ring of 3 pages
    slots = [1, 2, 0]
    hist = histories([p + n for p, n in spans], seed=9)
    rows = page_rows(3, 8, 30) if window == 0 else None
    cache = paged_cache(30, page_size) if window == 0 else ring_cache(3, window, page_size)
    reference = cache.clone()
    m = step_metadata(spans, slots, rows)
    store_kv_(flat(hist, spans, 1), flat(hist, spans, 2), cache, m.cu_seqlen, m.input_pos, m.slot_idx, m.page_table, 3, window)
    for i, span in enumerate(spans):
        store_new_tokens_torch(reference, hist[i], span, rows[i] if rows else None, slots[i], window)
    assert int((~reference.isnan()).sum()) > 0
    torch.testing.assert_close(cache, reference, equal_nan=True, atol=0, rtol=0)
