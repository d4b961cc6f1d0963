"""Cached attention (the torch path and the Triton path on CPU tensors) against the whole-sequence
reference: mixed batches, cache equivalence, sliding-window rings, page edges, reuse and sentinel rows."""
import pytest
import torch
from attention_cases import (
    IMPLS,
    assert_close,
    expected,
    histories,
    page_rows,
    paged_cache,
    ring_cache,
    run_step,
    store_prefix,
)

from trtllm_flash.ops.interface import window_pages

PAGE = 5


def rows_or_none(window, num_seqs, pages_each, num_pages, seed=0):
    return page_rows(num_seqs, pages_each, num_pages, seed) if window == 0 else None


def cache_for(window, num_pages, num_slots, dtype=torch.float32, page_size=PAGE):
    return paged_cache(num_pages, page_size, dtype) if window == 0 else ring_cache(num_slots, window, page_size, dtype)


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("window", [0, 7])
def test_mixed_batch_equals_each_sequence_alone(impl, dtype, window):
    # fresh prefill, continuing prefill, a 1-token prompt, a continuation shorter than a page, then decodes
    spans = [(0, 37), (13, 9), (0, 1), (4, 3), (20, 1), (5, 1), (11, 1)]
    slots = [6, 0, 3, 8, 1, 5, 2]  # permuted, in a pool larger than the batch
    hist = histories([p + n for p, n in spans], dtype)
    rows = rows_or_none(window, len(spans), 8, 64)
    cache = cache_for(window, 64, 10, dtype)
    for i, (p, _) in enumerate(spans):
        store_prefix(cache, hist[i], p, rows[i] if rows else None, slots[i], window)
    outs = run_step(IMPLS[impl], hist, spans, slots, rows, cache, window)
    for out, h, span in zip(outs, hist, spans):
        assert_close(out, expected(h, span, window), dtype)


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("window", [0, 6])
def test_decode_only_batch_in_decode_layout(impl, window):
    spans = [(9, 1), (1, 1), (17, 1)]
    slots = [2, 4, 0]
    hist = histories([p + n for p, n in spans], seed=3)
    rows = rows_or_none(window, 3, 4, 16)
    cache = cache_for(window, 16, 5)
    for i, (p, _) in enumerate(spans):
        store_prefix(cache, hist[i], p, rows[i] if rows else None, slots[i], window)
    outs = run_step(IMPLS[impl], hist, spans, slots, rows, cache, window, decode_layout=True)
    for out, h, span in zip(outs, hist, spans):
        assert_close(out, expected(h, span, window), torch.float32)


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("window", [0, 4])
def test_prefill_then_decodes_equals_one_prefill(impl, window):
    n, k = 11, 6
    hist = histories([n + k], seed=1)
    rows = rows_or_none(window, 1, 4, 12)
    one_shot = cache_for(window, 12, 3)
    full = run_step(IMPLS[impl], hist, [(0, n + k)], [1], rows, one_shot, window)[0]
    stepped = cache_for(window, 12, 3)
    outs = run_step(IMPLS[impl], hist, [(0, n)], [1], rows, stepped, window)
    outs += [run_step(IMPLS[impl], hist, [(p, 1)], [1], rows, stepped, window)[0] for p in range(n, n + k)]
    torch.testing.assert_close(torch.cat(outs), full, atol=1e-5, rtol=1e-5)
    assert_close(full, expected(hist[0], (0, n + k), window), torch.float32)
    torch.testing.assert_close(stepped, one_shot, equal_nan=True)


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("window", [0, 5])
def test_chunks_equal_one_prefill(impl, window):
    # chunk lengths around the page size (4, 5, 6) and one longer than the 3-page ring of window 5
    chunks = [4, 5, 6, 17, 1]
    total = sum(chunks)
    hist = histories([total], seed=2)
    rows = rows_or_none(window, 1, 8, 20)
    one_shot = cache_for(window, 20, 2)
    full = run_step(IMPLS[impl], hist, [(0, total)], [0], rows, one_shot, window)[0]
    chunked, outs, p = cache_for(window, 20, 2), [], 0
    for c in chunks:
        outs += run_step(IMPLS[impl], hist, [(p, c)], [0], rows, chunked, window)
        p += c
    torch.testing.assert_close(torch.cat(outs), full, atol=1e-5, rtol=1e-5)
    assert_close(full, expected(hist[0], (0, total), window), torch.float32)
    torch.testing.assert_close(chunked, one_shot, equal_nan=True)


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("page_size", [3, 4, 5])
def test_window_at_and_past_the_ring(impl, page_size):
    window = 4
    ring = window_pages(window, page_size)
    # decodes exactly at the window, one past it, and past a full ring turn; a chunk longer than the ring
    spans = [(ring * page_size + 3, 2 * ring * page_size + 1), (window - 1, 1), (window, 1), (ring * page_size, 1), (3 * ring * page_size + 1, 1)]
    slots = [4, 1, 3, 0, 2]
    hist = histories([p + n for p, n in spans], seed=page_size)
    cache = ring_cache(5, window, page_size)
    for i, (p, _) in enumerate(spans):
        store_prefix(cache, hist[i], p, None, slots[i], window)
    outs = run_step(IMPLS[impl], hist, spans, slots, None, cache, window)
    for out, h, span in zip(outs, hist, spans):
        assert_close(out, expected(h, span, window), torch.float32)
    # the ring now holds exactly the newest ring-full of each sequence
    reference = ring_cache(5, window, page_size)
    for i, (p, n) in enumerate(spans):
        store_prefix(reference, hist[i], p + n, None, slots[i], window)
    torch.testing.assert_close(cache, reference, equal_nan=True)


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("length", [3, 4, 5, 1])
def test_page_size_edges(impl, length):
    page_size = 4
    spans = [(0, length), (length, 1), (page_size - 1, 1), (page_size, 1), (page_size + 1, 1)]
    slots = list(range(len(spans)))
    hist = histories([p + n for p, n in spans], seed=length)
    rows = page_rows(len(spans), 3, 20)
    cache = paged_cache(20, page_size)
    for i, (p, _) in enumerate(spans):
        store_prefix(cache, hist[i], p, rows[i], slots[i], 0)
    outs = run_step(IMPLS[impl], hist, spans, slots, rows, cache, 0)
    for out, h, span in zip(outs, hist, spans):
        assert_close(out, expected(h, span, 0), torch.float32)


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("window", [0, 6])
def test_reused_slot_and_pages_leak_nothing(impl, window):
    old, new = histories([23, 9], seed=4)
    rows = rows_or_none(window, 1, 6, 8)
    cache = cache_for(window, 8, 2)
    run_step(IMPLS[impl], [old], [(0, 23)], [0], rows, cache, window)
    # a new sequence takes over the same slot and pages; the stale K/V of the old one must be invisible
    out = run_step(IMPLS[impl], [new], [(0, 7)], [0], rows, cache, window)[0]
    assert_close(out, expected(new, (0, 7), window), torch.float32)
    out = run_step(IMPLS[impl], [new], [(7, 1)], [0], rows, cache, window)[0]
    assert_close(out, expected(new, (7, 1), window), torch.float32)


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("window", [0, 6])
def test_padded_sentinel_rows_write_nothing_live(impl, window):
    num_slots = 4  # slot 3 is the sentinel
    spans = [(7, 1), (12, 1), (0, 1), (0, 1)]
    slots = [1, 0, num_slots - 1, num_slots - 1]
    hist = histories([p + n for p, n in spans], seed=5)
    live_rows = page_rows(2, 4, 12) if window == 0 else None
    rows = live_rows + [[0], [0]] if window == 0 else None
    cache = cache_for(window, 12, num_slots)
    for i in range(2):
        store_prefix(cache, hist[i], spans[i][0], live_rows[i] if live_rows else None, slots[i], window)
    outs = run_step(IMPLS[impl], hist, spans, slots, rows, cache, window, decode_layout=True)
    for out, h, span in zip(outs[:2], hist, spans):
        assert_close(out, expected(h, span, window), torch.float32)
    assert all(bool(torch.isfinite(o).all()) for o in outs[2:])
    reference = cache_for(window, 12, num_slots)
    for i in range(2):
        store_prefix(reference, hist[i], sum(spans[i]), live_rows[i] if live_rows else None, slots[i], window)
    if window == 0:
        live = torch.ones(12, dtype=torch.bool)
        live[0] = False  # the sentinel page may be scribbled on
    else:
        live = torch.arange(cache.shape[0]) < (num_slots - 1) * window_pages(window, PAGE)
    torch.testing.assert_close(cache[live], reference[live], equal_nan=True)
