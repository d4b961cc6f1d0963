"""CacheManager: tensor layouts, slot and page accounting, sentinel page/slot, sizing from memory."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from trtllm_flash.ops.interface import SENTINEL_PAGE, PagedKVCache, StateCache, window_pages
from trtllm_flash.runtime.cache_manager import CacheManager, pages_for_memory, snapshot_bytes

SPECS = {
    "conv": StateCache((6, 3), torch.float32, kind="conv"),
    "ssm": StateCache((2, 4, 5), torch.float32, kind="ssm"),
    "kv_full_0": PagedKVCache(num_kv_heads=2, head_dim=8, dtype=torch.float16),
    "kv_full_1": PagedKVCache(num_kv_heads=2, head_dim=8, dtype=torch.float16),
    "kv_window": PagedKVCache(num_kv_heads=2, head_dim=8, dtype=torch.float16, sliding_window=10),
}


def _manager(**kw) -> CacheManager:
    args = dict(cache_specs=SPECS, max_batch_size=3, max_seq_len=40, page_size=4, num_pages=9)
    args.update(kw)
    return CacheManager(**args)


def test_tensor_layouts():
    cm = _manager()
    assert cm.tensors["conv"].shape == (4, 6, 3)  # max_batch_size + sentinel slot
    assert cm.tensors["ssm"].shape == (4, 2, 4, 5)
    assert cm.tensors["kv_full_0"].shape == (9, 2, 2, 4, 8)
    assert cm.tensors["kv_full_0"].dtype == torch.float16
    ring = window_pages(10, 4)
    assert ring == 4
    assert cm.tensors["kv_window"].shape == (4 * ring, 2, 2, 4, 8)  # a ring per slot, sentinel included
    assert cm.tensors["kv_full_0"].data_ptr() != cm.tensors["kv_full_1"].data_ptr()


def test_slots_never_include_the_sentinel():
    cm = _manager()
    slots = [cm.allocate_slot() for _ in range(3)]
    assert sorted(slots) == [0, 1, 2] and cm.sentinel_slot == 3
    assert cm.allocate_slot() is None
    assert cm.num_used_slots == 3
    cm.free_slot(slots[1])
    assert cm.num_used_slots == 2 and cm.allocate_slot() == slots[1]
    with pytest.raises(ValueError, match="not an allocated slot"):
        cm.free_slot(3)


def test_page_accounting_and_exhaustion():
    cm = _manager()  # 8 usable pages of 4 tokens
    assert cm.num_free_pages == 8 and cm.num_used_pages == 0
    assert cm.ensure_pages("a", 9)  # 3 pages
    assert cm.ensure_pages("a", 12)  # still 3
    assert len(cm.page_table_row("a")) == 3
    assert cm.ensure_pages("b", 20)  # 5 pages: pool now full
    assert cm.num_used_pages == 8 and cm.num_free_pages == 0
    assert not cm.ensure_pages("a", 13)  # needs a 4th page: refused, nothing allocated
    assert not cm.ensure_pages("c", 1)
    assert len(cm.page_table_row("a")) == 3 and cm.page_table_row("c") == []
    pages = cm.page_table_row("a") + cm.page_table_row("b")
    assert SENTINEL_PAGE not in pages and len(set(pages)) == 8
    cm.free_pages("b")
    assert cm.num_used_pages == 3 and cm.ensure_pages("a", 13)
    cm.free_pages("a")
    cm.free_pages("a")  # idempotent
    assert cm.num_used_pages == 0 and cm.num_free_pages == 8


def test_page_table_rows_follow_allocation_and_pad_with_the_sentinel():
    cm = _manager()
    cm.ensure_pages("a", 9)  # 3 pages
    cm.ensure_pages("b", 2)  # 1 page
    table = cm.page_table(["b", "a", "none"])
    assert table.dtype == np.int32 and table.shape == (3, 3)
    assert table[0].tolist() == cm.page_table_row("b") + [SENTINEL_PAGE] * 2
    assert table[1].tolist() == cm.page_table_row("a")
    assert table[2].tolist() == [SENTINEL_PAGE] * 3
    cm.ensure_pages("b", 8)  # grows by one page
    assert cm.page_table(["b"])[0].tolist() == cm.page_table_row("b")
    cm.free_pages("a")
    cm.ensure_pages("c", 12)  # reuses a's pages
    assert cm.page_table(["c", "a"]).tolist() == [cm.page_table_row("c"), [SENTINEL_PAGE] * 3]
    assert cm.page_table(["none"]).shape == (1, 1)


def test_can_hold_is_the_pool_without_the_sentinel():
    cm = _manager()
    assert cm.can_hold(32) and not cm.can_hold(33)


def test_pages_for_memory_arithmetic():
    assert pages_for_memory(10_000, 3_000, max_useful_pages=100) == 3
    assert pages_for_memory(10_000, 3_000, max_useful_pages=2) == 2
    assert pages_for_memory(2_999, 3_000, max_useful_pages=100) == 0
    assert pages_for_memory(123, 0, max_useful_pages=17) == 17  # no full-attention layer


def test_num_pages_from_a_memory_budget():
    per_page = 2 * (2 * 2 * 4 * 8 * 2)  # two full layers, K and V, fp16
    assert per_page == 512
    cm = _manager(num_pages=None, memory_budget_bytes=512 * 7 + 100)
    assert cm.num_pages == 7 and cm.tensors["kv_full_0"].shape[0] == 7
    capped = _manager(num_pages=None, memory_budget_bytes=1 << 30)
    assert capped.num_pages == 3 * 10 + 1  # max_batch_size full-length sequences + sentinel


def test_too_small_a_pool_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 2"):
        _manager(num_pages=None, memory_budget_bytes=600)


def test_shared_pages_are_reference_counted_and_cached_pages_reclaimed():
    cm = _manager()  # 8 usable pages
    assert cm.ensure_pages("a", 8)
    first, second = cm.page_table_row("a")
    cm.hold_page(first)  # the prefix cache keeps a's first page
    cm.share_pages("b", [first])
    assert cm.ensure_pages("b", 6) and cm.page_table_row("b")[0] == first
    assert cm.num_used_pages == 3
    cm.free_pages("a")
    assert cm.num_used_pages == 2 and cm.page_in_use(first)  # b still reads it
    cm.free_pages("b")
    assert cm.num_used_pages == 0 and cm.num_cached_pages == 1 and cm.num_free_pages == 7
    with pytest.raises(ValueError, match="already holds pages"):
        cm.ensure_pages("c", 1)
        cm.share_pages("c", [first])
    cm.free_pages("c")
    asked = []
    cm.reclaim = lambda n: (asked.append(n), cm.release_page(first))
    assert cm.ensure_pages("d", 32)  # all 8 pages: the cached one must be given back
    assert asked == [1] and cm.num_cached_pages == 0 and cm.num_free_pages == 0
    assert first in cm.page_table_row("d") and second in cm.page_table_row("d")


def test_snapshots_copy_state_rows_window_rings_and_the_partial_page():
    cm = _manager(num_snapshots=2)
    assert cm.snapshots.nbytes == 2 * snapshot_bytes(SPECS, 4)
    ring = window_pages(10, 4)
    for name, tensor in cm.tensors.items():
        tensor.copy_(torch.randn(tensor.shape))
    cm.snapshots.save(1, slot=0, tail_page=5)
    cm.snapshots.restore(1, slot=2, tail_page=7)
    for name in ("conv", "ssm"):
        assert torch.equal(cm.tensors[name][2], cm.tensors[name][0])
    assert torch.equal(cm.tensors["kv_window"][2 * ring : 3 * ring], cm.tensors["kv_window"][0:ring])
    for name in ("kv_full_0", "kv_full_1"):
        assert torch.equal(cm.tensors[name][7], cm.tensors[name][5])
    assert not torch.equal(cm.tensors["conv"][1], cm.tensors["conv"][0])  # other slots untouched
