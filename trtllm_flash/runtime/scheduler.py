"""Continuous batching: which sequences run in the next forward, and how many tokens each brings.

Each step the scheduler visits the running sequences oldest first, then admits waiting ones:

* a decoding sequence brings 1 token; the token budget (``max_num_tokens``) is reserved for the
  decodes first, and prefill chunks share what is left;
* a prefilling sequence brings its remaining tokens, cut to the budget when ``enable_chunked_prefill``
  (a preempted sequence recomputing its cache is always chunked, or it could never fit again);
  without chunking a fresh prompt runs whole or waits;
* a waiting sequence is admitted (first come, first served, no overtaking) while a state slot, the
  budget and KV pages for its first chunk last — otherwise it waits. It starts from the longest
  cached prefix of its tokens (:class:`~trtllm_flash.runtime.prefix_cache.PrefixCache`: shared pages
  and a state snapshot), and when the cache proposes a split point its first chunk ends there;
* a running sequence that needs pages the pool does not have preempts the newest running sequence
  (frees its slot and pages and requeues it at the front of the queue to recompute from its prompt +
  generated tokens), itself if it is the newest. The oldest sequence therefore always progresses.

With the overlap scheduler a sequence's newest token may still be pending (on the GPU, see
:class:`~trtllm_flash.runtime.sequence.Sequence`): a decode feeds it from there; a sequence that has
all its ``max_tokens`` (pending ones included) is not scheduled again; a preempted sequence is not
readmitted before its pending token is known, since its recompute needs every token's value.

While ``solo`` is set (the engine isolating a request after a failed step), only that sequence is
scheduled: the batch holds it alone.

The batch lists prefill chunks first, then decodes, as the flattened-batch metadata requires.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Deque, List, Optional, Tuple

from trtllm_flash.runtime.cache_manager import CacheManager
from trtllm_flash.runtime.prefix_cache import PrefixCache
from trtllm_flash.runtime.sequence import Sequence, SequenceStatus


@dataclass
class ScheduledChunk:
    """``num_tokens`` uncomputed tokens of ``seq`` starting at ``seq.num_computed``; ``needs_logits``
    when the chunk ends the sequence's known tokens (the next token is sampled from it)."""

    seq: Sequence
    num_tokens: int
    needs_logits: bool


@dataclass
class ScheduledBatch:
    prefills: List[ScheduledChunk] = field(default_factory=list)
    decodes: List[ScheduledChunk] = field(default_factory=list)

    @property
    def chunks(self) -> List[ScheduledChunk]:
        """Prefill chunks, then decodes (the flattened-batch order)."""
        return self.prefills + self.decodes

    @property
    def num_tokens(self) -> int:
        return sum(c.num_tokens for c in self.chunks)

    def __bool__(self) -> bool:
        return bool(self.prefills or self.decodes)


class Scheduler:
    """Owns the waiting queue and the running list; allocates and frees through ``cache``; admits
    sequences from the longest prefix ``prefix_cache`` holds (None: a cache that only hands out slots
    and pages, every sequence computed from token 0)."""

    def __init__(self, cache: CacheManager, max_num_tokens: int, enable_chunked_prefill: bool, prefix_cache: Optional[PrefixCache] = None):
        if max_num_tokens < 1:
            raise ValueError(f"max_num_tokens must be >= 1, got {max_num_tokens}")
        self.cache = cache
        self.prefix_cache = prefix_cache
        self.max_num_tokens = max_num_tokens
        self.enable_chunked_prefill = enable_chunked_prefill
        self.waiting: Deque[Sequence] = deque()
        self.running: List[Sequence] = []
        self.num_preemptions = 0
        #: tokens admitted sequences skipped by starting from a cached prefix
        self.num_reused_tokens = 0
        #: sequences that can never run (their cache cannot grow even alone), with the reason
        self.failed: List[Tuple[Sequence, str]] = []
        #: when set, the only sequence scheduled (it must be running or at the front of ``waiting``)
        self.solo: Optional[Sequence] = None

    def add(self, seq: Sequence, front: bool = False) -> None:
        if front:
            self.waiting.appendleft(seq)
        else:
            self.waiting.append(seq)

    def set_aside(self, seq: Sequence) -> None:
        """Take running or waiting ``seq`` out of the queues, freeing its cache, to be added again
        later: it then recomputes its cache from its prompt + generated tokens, as after preemption."""
        if seq.status is SequenceStatus.RUNNING:
            self.running.remove(seq)
            self._release(seq)
        elif seq in self.waiting:
            self.waiting.remove(seq)
        seq.num_computed = 0
        seq.chunk_stop = None
        seq.status = SequenceStatus.WAITING

    def remove(self, seq: Sequence) -> None:
        """Take ``seq`` out of the queues and free its cache (finished, aborted or failed)."""
        if seq.status is SequenceStatus.RUNNING:
            self.running.remove(seq)
            self._release(seq)
        elif seq in self.waiting:
            self.waiting.remove(seq)
        seq.status = SequenceStatus.FINISHED

    def schedule(self) -> ScheduledBatch:
        batch = ScheduledBatch()
        budget = self.max_num_tokens
        i = 0
        while i < len(self.running):
            seq = self.running[i]
            if self.solo is not None and seq is not self.solo:
                want = 0
            elif seq.is_decoding:
                want = 1 if budget >= 1 and seq.num_generated < seq.params.max_tokens else 0
            else:
                decodes_behind = sum(1 for s in self.running[i + 1:] if s.is_decoding)
                want = self._chunk_size(seq, budget - decodes_behind)
            if want == 0:
                i += 1
                continue
            if not self._grow(seq, seq.num_computed + want):
                continue  # seq was preempted (it was the newest) or failed: it left the running list
            chunk = ScheduledChunk(seq, want, seq.num_computed + want == len(seq.token_ids))
            (batch.decodes if seq.is_decoding else batch.prefills).append(chunk)
            budget -= want
            i += 1
        while self.waiting and budget > 0:
            seq = self.waiting[0]
            if seq.num_pending or (self.solo is not None and (seq is not self.solo or batch)):
                break
            want = self._admit(seq, budget)
            if want == 0:
                break
            batch.prefills.append(ScheduledChunk(seq, want, seq.num_computed + want == len(seq.token_ids)))
            budget -= want
        return batch

    def _chunk_size(self, seq: Sequence, available: int, first: bool = False) -> int:
        """Tokens ``seq`` brings when ``available`` tokens of budget are left (0: it waits); ``first``:
        the first chunk of an admission, which without chunked prefill runs whole or waits. A chunk
        ends at ``seq.chunk_stop`` (a split point the prefix cache asked for) when it is ahead."""
        if available <= 0:
            return 0
        remaining = seq.num_uncomputed
        if seq.chunk_stop is not None and seq.chunk_stop > seq.num_computed:
            remaining = seq.chunk_stop - seq.num_computed
        if self.enable_chunked_prefill or not first or seq.is_recompute:
            return min(remaining, available)
        return remaining if remaining <= available else 0

    def _admit(self, seq: Sequence, budget: int) -> int:
        """Admit the head of the queue from its longest cached prefix; the tokens of its first chunk,
        0 (nothing held) when the slot, budget or pages run short."""
        slot = self.cache.allocate_slot()
        if slot is None:
            return 0
        match = self.prefix_cache.match(seq.token_ids) if self.prefix_cache is not None else None
        seq.num_computed = match.position if match is not None else 0
        seq.chunk_stop = match.split_at if match is not None else None
        want = self._chunk_size(seq, budget, first=True)
        length = seq.num_computed + want
        admitted = want > 0 and (
            self.prefix_cache.admit(seq.request_id, slot, match, length) if match is not None else self.cache.ensure_pages(seq.request_id, length)
        )
        if not admitted:
            seq.num_computed, seq.chunk_stop = 0, None
            self.cache.free_slot(slot)
            return 0
        self.waiting.popleft()
        seq.slot = slot
        seq.status = SequenceStatus.RUNNING
        if seq.num_cached_tokens is None:
            seq.num_cached_tokens = seq.num_computed
        self.num_reused_tokens += seq.num_computed
        self.running.append(seq)
        return want

    def _grow(self, seq: Sequence, length: int) -> bool:
        """Pages for ``length`` tokens of running ``seq``, preempting the newest running sequences as
        needed; False when ``seq`` itself left the running list."""
        while not self.cache.ensure_pages(seq.request_id, length):
            victim = self.running[-1]
            if victim is seq and len(self.running) == 1:
                self.running.remove(seq)
                self._release(seq)
                seq.status = SequenceStatus.FINISHED
                self.failed.append((seq, f"the KV cache cannot hold {length} tokens of this request even alone ({self.cache.num_pages - 1} pages of {self.cache.page_size})"))
                return False
            self._preempt(victim)
            if victim is seq:
                return False
        return True

    def _preempt(self, seq: Sequence) -> None:
        self.running.remove(seq)
        self._release(seq)
        seq.num_computed = 0
        seq.chunk_stop = None
        seq.status = SequenceStatus.WAITING
        self.waiting.appendleft(seq)
        self.num_preemptions += 1

    def _release(self, seq: Sequence) -> None:
        self.cache.free_pages(seq.request_id)
        if seq.slot is not None:
            self.cache.free_slot(seq.slot)
            seq.slot = None
