"""Prefix cache for a hybrid model: shared full-attention pages plus recurrent-state snapshots.

A sequence can skip the first ``L`` tokens of its prompt only if it gets *everything* its caches would
hold after them: the K/V of positions ``< L`` in every full-attention layer, and the state every other
mixer carries (DeltaNet and Mamba2 states, every short-conv tail, the sliding-window rings). The
first are pages, shared read-only; the second cannot be rebuilt from pages, so the cache keeps
**snapshots**: copies of a slot's state at position ``L`` (:class:`~.cache_manager.SlotState`; plus the
partial last page when ``L`` ends mid-page, copied into the sequence's own page on resume —
copy-on-write). A sequence resumes from the longest prefix of its tokens that has both.

Structure: a trie of **blocks**, one per full page, keyed by (parent block, the page's tokens) — a
chained content key, exact (no hash collisions); the root stands for the empty prefix. A snapshot at
position ``L`` hangs off the block that ends at ``L // page_size`` pages, keyed by the tokens of the
partial page (empty when ``L`` is page-aligned).

What gets cached (the engine calls :meth:`PrefixCache.record`):

* the **memory-token prefix**, always (unless ``kv_cache_config.reuse_memory_tokens`` is false): the
  engine computes it once; its blocks and snapshot are pinned (never evicted);
* with ``kv_cache_config.enable_block_reuse``: the full pages of every prefill chunk, a snapshot at
  the end of each prefill chunk that ends on a page boundary, and one at the end of a finished
  sequence (prompt + output, for the next chat turn). When a prompt matches cached pages further than
  its best snapshot, :meth:`match` proposes that page boundary as ``split_at``: the scheduler ends the
  first chunk there, so the snapshot taken there serves the next prompt with the same prefix (a shared
  system prompt).

Bounds: at most ``max_snapshots`` snapshots besides the pinned one (the least recently used is
dropped for a new one); cached pages are the pool's spare pages — when the pool runs short the
least recently used leaf blocks no sequence holds are freed (with their snapshots). A sequence's
pages are reference counted (:class:`~.cache_manager.CacheManager`), so a page in use is never freed,
and a snapshot is copied into the slot at admission, so evicting it later harms no one.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence as Seq, Tuple

from trtllm_flash.runtime.cache_manager import CacheManager


class _Block:
    """One full page of a cached prefix: tokens ``[(depth - 1) * P, depth * P)`` in ``page``."""

    __slots__ = ("parent", "tokens", "page", "depth", "children", "snapshots", "pinned")

    def __init__(self, parent: Optional["_Block"], tokens: Tuple[int, ...], page: int, pinned: bool):
        self.parent = parent
        self.tokens = tokens
        self.page = page
        self.depth = 0 if parent is None else parent.depth + 1
        self.children = 0
        self.snapshots: Dict[Tuple[int, ...], _Snapshot] = {}  # partial-page tokens -> snapshot
        self.pinned = pinned


class _Snapshot:
    """State at position ``block.depth * P + len(tail)`` in snapshot-store row ``row``."""

    __slots__ = ("row", "block", "tail", "pinned")

    def __init__(self, row: int, block: _Block, tail: Tuple[int, ...], pinned: bool):
        self.row = row
        self.block = block
        self.tail = tail
        self.pinned = pinned


@dataclass
class PrefixMatch:
    """Where a sequence can start: ``position`` tokens are covered by the shared ``pages`` (the full
    pages below ``position``) and ``snapshot``; ``split_at`` is a page boundary past ``position`` up to
    which the cache holds pages but no snapshot (end the first chunk there to take one)."""

    position: int = 0
    pages: List[int] = field(default_factory=list)
    snapshot: Optional[_Snapshot] = None
    split_at: Optional[int] = None


class PrefixCache:
    """The prefix cache over ``cache`` (whose snapshot store has ``max_snapshots`` rows, plus one for
    the memory-token prefix when ``pin_rows`` is 1).

    Args:
        cache: the engine's cache manager (pages, slots, snapshot store).
        enable_reuse: ``kv_cache_config.enable_block_reuse``: cache what sequences compute; off, only
            the pinned memory-token prefix is cached.
        pin_rows: snapshot-store rows kept for pinned snapshots (the memory-token prefix).
    """

    def __init__(self, cache: CacheManager, enable_reuse: bool, pin_rows: int = 0):
        self.cache = cache
        self.page_size = cache.page_size
        self.enable_reuse = enable_reuse
        self._root = _Block(None, (), -1, pinned=True)
        self._children: Dict[Tuple[int, Tuple[int, ...]], _Block] = {}
        self._blocks: "OrderedDict[_Block, None]" = OrderedDict()  # least recently used first
        self._snapshots: "OrderedDict[_Snapshot, None]" = OrderedDict()
        self._pin_rows = list(range(pin_rows))
        self._free_rows = list(range(cache.snapshots.num_rows - 1, pin_rows - 1, -1))
        self._can_snapshot = bool(self._free_rows)
        cache.reclaim = self.reclaim

    # -- lookup and resume ---------------------------------------------------------------------

    def match(self, tokens: Seq[int]) -> PrefixMatch:
        """The longest prefix of ``tokens`` (leaving at least the last token to compute) with pages and
        a snapshot; marks what it uses as recently used."""
        P, limit = self.page_size, len(tokens) - 1
        node, path = self._root, []
        best: Optional[_Snapshot] = None
        best_pos = 0
        while True:
            base = node.depth * P
            for tail, snap in node.snapshots.items():
                end = base + len(tail)
                if best_pos < end <= limit and tuple(tokens[base:end]) == tail:
                    best, best_pos = snap, end
            if base + P > limit:
                break
            child = self._children.get((id(node), tuple(tokens[base : base + P])))
            if child is None:
                break
            path.append(child)
            node = child
        if best is None:
            return PrefixMatch(split_at=self._split(len(path), 0))
        used = path[: best.block.depth]
        for block in reversed(used):  # leaf first, so a parent is always more recent than its children
            self._blocks.move_to_end(block)
        self._snapshots.move_to_end(best)
        return PrefixMatch(best_pos, [b.page for b in used], best, self._split(len(path), best_pos))

    def _split(self, cached_pages: int, position: int) -> Optional[int]:
        boundary = cached_pages * self.page_size
        return boundary if self.enable_reuse and self._can_snapshot and boundary > position else None

    def admit(self, seq_id: str, slot: int, match: PrefixMatch, length: int) -> bool:
        """Give ``seq_id`` (in state slot ``slot``) ``match``'s shared pages, its own pages up to
        ``length`` tokens and ``match``'s snapshot; False (nothing held) when the pool is short."""
        self.cache.share_pages(seq_id, match.pages)
        if not self.cache.ensure_pages(seq_id, length):
            self.cache.free_pages(seq_id)
            return False
        snap = match.snapshot
        if snap is not None:
            tail_page = self.cache.page_table_row(seq_id)[len(match.pages)] if snap.tail else None
            self.cache.snapshots.restore(snap.row, slot, tail_page)
        return True

    # -- recording -----------------------------------------------------------------------------

    def record(self, seq_id: str, tokens: Seq[int], slot: int, position: int, snapshot: bool, pinned: bool = False) -> None:
        """Cache the full pages of ``seq_id``'s first ``position`` tokens (``tokens[:position]``, all
        computed) and, when ``snapshot``, slot ``slot``'s state at ``position``. ``pinned`` entries are
        never evicted (the memory-token prefix)."""
        if not (self.enable_reuse or pinned) or position == 0:
            return
        P = self.page_size
        row = self.cache.page_table_row(seq_id)
        node = self._root
        for j in range(position // P):
            key = (id(node), tuple(tokens[j * P : (j + 1) * P]))
            child = self._children.get(key)
            if child is None:
                child = _Block(node, key[1], row[j], pinned)
                self.cache.hold_page(row[j])
                self._children[key] = child
                node.children += 1
                self.cache.reserved_pages += pinned
            self._blocks[child] = None
            self._blocks.move_to_end(child)
            node = child
        if not snapshot:
            return
        tail = tuple(tokens[node.depth * P : position])
        if tail in node.snapshots:
            self._snapshots.move_to_end(node.snapshots[tail])
            return
        row_index = self._take_row(pinned)
        if row_index is None:
            return
        self.cache.snapshots.save(row_index, slot, row[node.depth] if tail else None)
        snap = _Snapshot(row_index, node, tail, pinned)
        node.snapshots[tail] = snap
        self._snapshots[snap] = None

    def _take_row(self, pinned: bool) -> Optional[int]:
        rows = self._pin_rows if pinned else self._free_rows
        if not rows and not pinned:
            victim = next((s for s in self._snapshots if not s.pinned), None)
            if victim is not None:
                self._drop_snapshot(victim)
        return rows.pop() if rows else None

    # -- eviction ------------------------------------------------------------------------------

    def reclaim(self, num_pages: int) -> int:
        """Free up to ``num_pages`` cached pages, least recently used leaf blocks first (never a pinned
        block or a page a sequence holds); returns how many were freed."""
        freed = 0
        progress = True
        while freed < num_pages and progress:
            progress = False
            for block in list(self._blocks):
                if freed >= num_pages:
                    break
                if block.pinned or block.children or self.cache.page_in_use(block.page):
                    continue
                self._drop_block(block)
                freed += 1
                progress = True
        return freed

    def clear(self) -> None:
        """Drop every unpinned block and snapshot no sequence uses."""
        for snap in [s for s in self._snapshots if not s.pinned]:
            self._drop_snapshot(snap)
        self.reclaim(len(self._blocks))

    def _drop_block(self, block: _Block) -> None:
        for snap in list(block.snapshots.values()):
            self._drop_snapshot(snap)
        del self._children[(id(block.parent), block.tokens)]
        del self._blocks[block]
        block.parent.children -= 1
        self.cache.release_page(block.page)

    def _drop_snapshot(self, snap: _Snapshot) -> None:
        del snap.block.snapshots[snap.tail]
        del self._snapshots[snap]
        (self._pin_rows if snap.pinned else self._free_rows).append(snap.row)

    # -- accounting ----------------------------------------------------------------------------

    @property
    def num_blocks(self) -> int:
        return len(self._blocks)

    @property
    def num_snapshots(self) -> int:
        """Snapshots held, the pinned memory-token prefix's included."""
        return len(self._snapshots)
