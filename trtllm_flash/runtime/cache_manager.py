"""CacheManager: owns every cache tensor of a built model and hands out state slots and KV pages.

Layouts (``trtllm_flash/ops/interface.py``):

* state caches (:class:`StateCache`): ``[max_batch_size + 1, *shape]``; slot ``max_batch_size`` is the
  CUDA-graph sentinel and is never handed out;
* full-attention KV (:class:`PagedKVCache`, ``sliding_window == 0``): ``[num_pages, 2, num_kv_heads,
  page_size, head_dim]`` per layer; all such layers share one page allocator (a sequence's page ``j``
  is the same physical page in every layer). Page :data:`SENTINEL_PAGE` (0) is never handed out;
* sliding-window KV: ``[num_slots * window_pages(w, page_size), 2, num_kv_heads, page_size, head_dim]``
  per layer, a fixed ring per state slot (sentinel slot included), so it needs no pages.

A freed slot is not zeroed: a prefill from zero state is signalled by ``use_initial_states = False``.

Pages are reference counted so that sequences can share the full pages of a common prefix (the
prefix cache, :mod:`trtllm_flash.runtime.prefix_cache`): a page is *used* while a sequence's page
row holds it, *cached* while only the prefix cache holds it, and *free* otherwise. A sequence never
writes a page it shares: it only writes positions it computes, which lie beyond the shared prefix.

:class:`SlotState` is the one place that knows what a sequence's state outside its full pages is —
every state-cache row (conv tails, Mamba2 SSM state, DeltaNet state), its sliding-window rings, and
the partial last full-attention page of a prefix that ends mid-page — and :class:`SnapshotStore` keeps
copies of it (prefix-cache snapshots) as plain tensor copies.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Hashable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from trtllm_flash.ops.interface import SENTINEL_PAGE, CacheSpec, PagedKVCache, StateCache, window_pages

#: the KV budget on the CPU when no page count or memory budget is given
DEFAULT_CPU_KV_BUDGET_BYTES = 1 << 30


def pages_for_memory(budget_bytes: int, bytes_per_page: int, max_useful_pages: int) -> int:
    """Pages (sentinel included) that fit in ``budget_bytes`` at ``bytes_per_page`` each, capped at
    ``max_useful_pages``. A model without full-attention layers (``bytes_per_page == 0``) gets the cap."""
    if bytes_per_page <= 0:
        return max_useful_pages
    return min(max(int(budget_bytes), 0) // bytes_per_page, max_useful_pages)


class _PageRow:
    """One sequence's pages: ``row[:count]`` in logical order, the rest :data:`SENTINEL_PAGE` (int32
    ``[max_pages_per_seq]``, so a batch's page table is a stack of these rows)."""

    def __init__(self, max_pages: int):
        self.row = np.full(max_pages, SENTINEL_PAGE, dtype=np.int32)
        self.count = 0

    def pages(self) -> List[int]:
        return self.row[: self.count].tolist()


def sequence_cache_bytes(cache_specs: Dict[str, CacheSpec], page_size: int, full_attention_pages: int) -> int:
    """Bytes one sequence holds in the caches of a model with ``cache_specs``: its state rows, its
    sliding-window rings (the window's pages) and ``full_attention_pages`` pages of every
    full-attention layer."""
    total = 0
    for spec in cache_specs.values():
        if isinstance(spec, StateCache):
            total += spec.bytes_per_slot()
        elif spec.sliding_window > 0:
            total += window_pages(spec.sliding_window, page_size) * spec.bytes_per_page(page_size)
        else:
            total += full_attention_pages * spec.bytes_per_page(page_size)
    return total


def snapshot_bytes(cache_specs: Dict[str, CacheSpec], page_size: int, with_tail: bool = True) -> int:
    """Bytes of one prefix-cache snapshot of a model with ``cache_specs``: every state row, every
    sliding-window ring and, when ``with_tail`` (a prefix ending mid-page), one page of every
    full-attention layer — what :class:`SlotState` lists."""
    return sequence_cache_bytes(cache_specs, page_size, full_attention_pages=int(with_tail))


class SlotState:
    """Views of one sequence's state outside its full pages, in the cache manager's tensors.

    ``parts(slot)`` lists, in a fixed order, every state cache's row ``[slot]`` (shape ``spec.shape``)
    and every sliding-window layer's ring ``[slot * R : (slot + 1) * R]`` (R = :func:`window_pages`);
    ``tail(page)`` lists every full-attention layer's page ``[page]`` (``[2, hkv, page_size, d]``), the
    partial last page a prefix ending mid-page needs. Restoring both parts at the same position gives
    a slot that continues exactly as the one they were copied from.
    """

    def __init__(self, tensors: Dict[str, torch.Tensor], cache_specs: Dict[str, CacheSpec], page_size: int):
        self._tensors = tensors  # read at each call: the cache manager may replace a tensor while sizing
        self._rows: List[str] = []
        self._rings: List[Tuple[str, int]] = []
        self._full: List[str] = []
        for name, spec in cache_specs.items():
            if isinstance(spec, StateCache):
                self._rows.append(name)
            elif spec.sliding_window > 0:
                self._rings.append((name, window_pages(spec.sliding_window, page_size)))
            else:
                self._full.append(name)

    def parts(self, slot: int) -> List[torch.Tensor]:
        t = self._tensors
        return [t[n][slot] for n in self._rows] + [t[n][slot * ring : (slot + 1) * ring] for n, ring in self._rings]

    def tail(self, page: int) -> List[torch.Tensor]:
        return [self._tensors[n][page] for n in self._full]

    def copy_tail(self, src_page: int, dst_page: int) -> None:
        """Copy page ``src_page`` of every full-attention layer to ``dst_page`` (copy-on-write)."""
        for n in self._full:
            self._tensors[n][dst_page].copy_(self._tensors[n][src_page])


class SnapshotStore:
    """``num_rows`` copies of a :class:`SlotState` (device tensors allocated once): row ``r`` holds one
    sequence's state parts at some position and, when that position is mid-page, its partial page."""

    def __init__(self, state: SlotState, num_rows: int, device: torch.device):
        self.state = state
        self.num_rows = num_rows
        probe = state.parts(0) + state.tail(0) if num_rows else []
        self._store = [torch.empty((num_rows, *t.shape), dtype=t.dtype, device=device) for t in probe]
        self._num_parts = len(state.parts(0))

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self._store)

    def save(self, row: int, slot: int, tail_page: Optional[int]) -> None:
        """Copy ``slot``'s state (and ``tail_page`` of every full-attention layer, if given) into ``row``."""
        sources = self.state.parts(slot) + (self.state.tail(tail_page) if tail_page is not None else [])
        for store, src in zip(self._store, sources):
            store[row].copy_(src)

    def restore(self, row: int, slot: int, tail_page: Optional[int]) -> None:
        """Copy ``row`` into ``slot`` (and its saved partial page into ``tail_page``, if given)."""
        targets = self.state.parts(slot) + (self.state.tail(tail_page) if tail_page is not None else [])
        for store, dst in zip(self._store, targets):
            dst.copy_(store[row])


class CacheManager:
    """Allocates the caches of ``cache_specs`` and tracks which slots and pages are in use.

    Args:
        cache_specs: cache input name -> spec, as the built model declares them.
        max_batch_size: live sequences at most (state slots, not counting the sentinel).
        max_seq_len: tokens per sequence at most (bounds the useful page count).
        page_size: tokens per KV page (``kv_cache_config.tokens_per_block``).
        num_pages: full-attention pages including the sentinel page; None = from the memory budget.
        device: where the caches live.
        memory_budget_bytes: KV bytes to fill with pages when ``num_pages`` is None; None = on the GPU
            ``free_memory_fraction`` of the memory free after the state caches, on the CPU
            :data:`DEFAULT_CPU_KV_BUDGET_BYTES`.
        free_memory_fraction: ``kv_cache_config.free_gpu_memory_fraction``.
        num_snapshots: rows of the :class:`SnapshotStore` (prefix-cache snapshots), allocated before
            the pages are sized from the memory budget.
    """

    def __init__(
        self,
        cache_specs: Dict[str, CacheSpec],
        max_batch_size: int,
        max_seq_len: int,
        page_size: int,
        num_pages: Optional[int] = None,
        device: torch.device | str = "cpu",
        memory_budget_bytes: Optional[int] = None,
        free_memory_fraction: float = 0.9,
        num_snapshots: int = 0,
    ):
        if max_batch_size < 1 or max_seq_len < 1 or page_size < 1:
            raise ValueError(f"max_batch_size, max_seq_len and page_size must be >= 1, got {max_batch_size}, {max_seq_len}, {page_size}")
        self.max_batch_size = max_batch_size
        self.max_seq_len = max_seq_len
        self.page_size = page_size
        self.device = torch.device(device)
        self.num_slots = max_batch_size + 1
        self.sentinel_slot = max_batch_size
        self.max_pages_per_seq = math.ceil(max_seq_len / page_size)
        self.tensors: Dict[str, torch.Tensor] = {}
        full_kv: Dict[str, PagedKVCache] = {}
        for name, spec in cache_specs.items():
            if isinstance(spec, StateCache):
                self.tensors[name] = torch.zeros(self.num_slots, *spec.shape, dtype=spec.dtype, device=self.device)
            elif isinstance(spec, PagedKVCache) and spec.sliding_window > 0:
                ring = window_pages(spec.sliding_window, page_size)
                self.tensors[name] = self._kv_tensor(spec, self.num_slots * ring)
            elif isinstance(spec, PagedKVCache):
                full_kv[name] = spec
            else:
                raise ValueError(f"cache {name!r} has spec {spec!r}; expected a PagedKVCache or StateCache")
        for name, spec in full_kv.items():  # one page each until the snapshot store is allocated
            self.tensors[name] = self._kv_tensor(spec, 1)
        self.slot_state = SlotState(self.tensors, cache_specs, page_size)
        self.snapshots = SnapshotStore(self.slot_state, num_snapshots, self.device)
        self.num_pages = self._resolve_num_pages(full_kv, num_pages, memory_budget_bytes, free_memory_fraction)
        for name, spec in full_kv.items():
            self.tensors[name] = self._kv_tensor(spec, self.num_pages)
        self._free_slots: List[int] = list(range(max_batch_size - 1, -1, -1))
        self._free_pages: List[int] = [p for p in range(self.num_pages - 1, -1, -1) if p != SENTINEL_PAGE]
        self._pages: Dict[Hashable, _PageRow] = {}
        self._seq_refs = np.zeros(self.num_pages, dtype=np.int32)  # page rows holding each page
        self._cache_held = np.zeros(self.num_pages, dtype=bool)  # pages the prefix cache holds
        #: pages the prefix cache keeps for good (the memory-token prefix); only the sequences that
        #: start with that prefix can use them
        self.reserved_pages = 0
        #: called with a page count when the free list runs short: the prefix cache lets go of (up
        #: to) that many cached pages
        self.reclaim: Optional[Callable[[int], None]] = None

    def _kv_tensor(self, spec: PagedKVCache, pages: int) -> torch.Tensor:
        shape = (pages, 2, spec.num_kv_heads, self.page_size, spec.head_dim)
        return torch.zeros(shape, dtype=spec.dtype, device=self.device)

    def _resolve_num_pages(self, full_kv: Dict[str, PagedKVCache], num_pages: Optional[int], budget: Optional[int], fraction: float) -> int:
        useful = self.max_batch_size * self.max_pages_per_seq + 1
        if num_pages is None:
            if budget is None and self.device.type == "cuda":
                free_bytes, _ = torch.cuda.mem_get_info(self.device)
                budget = int(free_bytes * fraction)
            elif budget is None:
                budget = DEFAULT_CPU_KV_BUDGET_BYTES
            bytes_per_page = sum(spec.bytes_per_page(self.page_size) for spec in full_kv.values())
            num_pages = pages_for_memory(budget, bytes_per_page, useful)
        if num_pages < 2:
            raise ValueError(
                f"the KV cache holds {num_pages} pages but needs at least 2 (the sentinel page and one more); "
                f"raise kv_cache_config.free_gpu_memory_fraction / max_tokens or lower max_batch_size"
            )
        return int(num_pages)

    # -- slots ---------------------------------------------------------------------------------

    def allocate_slot(self) -> Optional[int]:
        """A free state slot, or None when all ``max_batch_size`` are in use."""
        return self._free_slots.pop() if self._free_slots else None

    def free_slot(self, slot: int) -> None:
        if not 0 <= slot < self.max_batch_size or slot in self._free_slots:
            raise ValueError(f"slot {slot} is not an allocated slot")
        self._free_slots.append(slot)

    # -- pages ---------------------------------------------------------------------------------

    def pages_needed(self, length: int) -> int:
        """Pages that hold ``length`` tokens."""
        return math.ceil(length / self.page_size)

    def can_hold(self, length: int, shared_pages: int = 0) -> bool:
        """Whether one sequence of ``length`` tokens, ``shared_pages`` of them reserved prefix pages it
        shares, fits in the pool when it has it to itself."""
        return self.pages_needed(length) - shared_pages <= self.num_pages - 1 - self.reserved_pages

    def _take_free(self, count: int) -> bool:
        """Make sure ``count`` pages are on the free list, reclaiming cached pages; False if impossible."""
        if count > len(self._free_pages) and self.reclaim is not None:
            self.reclaim(count - len(self._free_pages))
        return count <= len(self._free_pages)

    def _pop_free(self) -> int:
        page = self._free_pages.pop()
        self._seq_refs[page] = 1
        return page

    def ensure_pages(self, seq_id: Hashable, length: int) -> bool:
        """Give ``seq_id`` pages for its first ``length`` tokens; False (nothing allocated) when the pool
        has too few free (or reclaimable cached) pages."""
        held = self._pages.get(seq_id)
        count = 0 if held is None else held.count
        missing = self.pages_needed(length) - count
        if missing <= 0:
            return True
        if not self._take_free(missing):
            return False
        if held is None:
            held = self._pages[seq_id] = _PageRow(self.max_pages_per_seq)
        held.row[count : count + missing] = [self._pop_free() for _ in range(missing)]
        held.count += missing
        return True

    def share_pages(self, seq_id: Hashable, pages: Sequence[int]) -> None:
        """Start ``seq_id``'s page row (it must hold none) with the shared, already filled ``pages``."""
        if seq_id in self._pages:
            raise ValueError(f"sequence {seq_id!r} already holds pages; shared pages must come first")
        if not pages:
            return
        held = self._pages[seq_id] = _PageRow(self.max_pages_per_seq)
        held.row[: len(pages)] = pages
        held.count = len(pages)
        self._seq_refs[list(pages)] += 1

    def free_pages(self, seq_id: Hashable) -> None:
        """Drop every page of ``seq_id`` (no-op when it holds none); a page no one else holds is freed."""
        held = self._pages.pop(seq_id, None)
        if held is None:
            return
        for page in reversed(held.pages()):
            self._seq_refs[page] -= 1
            if self._seq_refs[page] == 0 and not self._cache_held[page]:
                self._free_pages.append(page)

    # -- the prefix cache's hold on pages ---------------------------------------------------------

    def hold_page(self, page: int) -> None:
        """The prefix cache keeps ``page`` (a filled page some sequence holds) after its sequences."""
        if self._seq_refs[page] == 0 or self._cache_held[page]:
            raise ValueError(f"page {page} is not a sequence's page the prefix cache can take")
        self._cache_held[page] = True

    def release_page(self, page: int) -> None:
        """The prefix cache lets go of ``page``; it is freed if no sequence holds it."""
        if not self._cache_held[page]:
            raise ValueError(f"page {page} is not held by the prefix cache")
        self._cache_held[page] = False
        if self._seq_refs[page] == 0:
            self._free_pages.append(page)

    def page_in_use(self, page: int) -> bool:
        """Whether a sequence's page row holds ``page``."""
        return bool(self._seq_refs[page])

    def page_table_row(self, seq_id: Hashable) -> List[int]:
        """Physical page of each logical page of ``seq_id``, in order."""
        held = self._pages.get(seq_id)
        return [] if held is None else held.pages()

    def page_table(self, seq_ids: Sequence[Hashable]) -> np.ndarray:
        """int32 ``[len(seq_ids), width]``: row ``i`` is ``seq_ids[i]``'s pages, padded with
        :data:`SENTINEL_PAGE`; ``width`` is the most pages any of them holds (at least 1). Built from
        per-sequence numpy rows, so a step of hundreds of long sequences costs one gather, not a
        Python loop over every page."""
        held = [self._pages.get(s) for s in seq_ids]
        width = max([h.count for h in held if h is not None] + [1])
        empty = np.full(width, SENTINEL_PAGE, dtype=np.int32)
        return np.stack([empty if h is None else h.row[:width] for h in held])

    # -- accounting ----------------------------------------------------------------------------

    @property
    def num_used_pages(self) -> int:
        """Pages some sequence holds (shared ones once)."""
        return int(np.count_nonzero(self._seq_refs))

    @property
    def num_cached_pages(self) -> int:
        """Pages only the prefix cache holds."""
        return int(np.count_nonzero(self._cache_held & (self._seq_refs == 0)))

    @property
    def num_free_pages(self) -> int:
        return len(self._free_pages)

    @property
    def num_used_slots(self) -> int:
        return self.max_batch_size - len(self._free_slots)

    @property
    def num_free_slots(self) -> int:
        return len(self._free_slots)
