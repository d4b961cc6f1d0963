"""Engine: the step loop of the standalone runtime.

One :meth:`Engine.step` = schedule one flattened batch (prefill chunks first, then one token per
decoding sequence), run the built model once on it, sample one token for every sequence whose known
tokens were all consumed, and report what each request gained. Not thread-safe: the OpenAI server
drives it from a single engine thread.

The overlap scheduler (on unless ``disable_overlap_scheduler``) keeps the GPU busy while the host
works: step ``n + 1`` is launched before the tokens of step ``n`` are read, its decode inputs gathered
on the GPU from step ``n``'s sampled tokens; the host then reads step ``n``'s tokens, checks the stop
conditions and reports them while step ``n + 1`` runs.

Prefix caching (:mod:`trtllm_flash.runtime.prefix_cache`): at construction the engine computes the
state after the model's memory tokens once (unless ``kv_cache_config.reuse_memory_tokens`` is false)
and every prompt that starts with them resumes from it. With ``kv_cache_config.enable_block_reuse``
it also records the pages of every prefill chunk, a snapshot at each chunk end on a page boundary and
one at the end of every finished sequence.

With ``decode_steps_per_launch`` k > 1, a launch of a decode-only batch whose requests are all greedy
and have k tokens of ``max_tokens`` left (and KV pages for them) runs k decode steps on the device
(:mod:`trtllm_flash.runtime.multi_step`); the host reads the k tokens per request at once and checks
the stop conditions token by token, dropping the tokens computed past a stop. Any other batch runs one
step.

One request never fails the others. Its sampling parameters are validated when it is added; a row
that still cannot be sampled (:class:`~trtllm_flash.runtime.sampling.RowSamplingError`) fails that
request alone, the other rows keeping the tokens they drew. A forward that raises fails its request
when it ran alone; with several requests in the batch the culprit is unknown, so every one of them is
*set aside* (cache freed, to be recomputed from its tokens, as after a preemption) and retried alone,
one at a time, until it has sampled a token alone: the one that fails alone gets the error, the
others go on with the tokens they would have had.
"""
from __future__ import annotations

import itertools
import logging
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Sequence as Seq

import numpy as np
import torch

from trtllm_flash.ops.metadata import BatchMetadata, metadata_arrays
from trtllm_flash.runtime.cache_manager import CacheManager
from trtllm_flash.runtime.prefix_cache import PrefixCache
from trtllm_flash.runtime.sampling import RowSamplingError, find_stop_string, make_generator, sample
from trtllm_flash.runtime.scheduler import ScheduledBatch, ScheduledChunk, Scheduler
from trtllm_flash.runtime.sequence import RequestOutputDelta, Sequence, SequenceStatus
from trtllm_flash.runtime.staging import HostToDeviceStager
from trtllm_flash.sampling_params import SamplingParams

logger = logging.getLogger(__name__)

#: a request in this many failed batches is failed itself (a failure that needs several requests together
#: would otherwise set them aside and retry them for ever)
MAX_FAILED_BATCHES = 3


class _SampledStep:
    """The tokens one launch sampled: column ``i`` of ``tokens`` (int64 ``[k, N]`` on the device, one row
    per decode step) is ``sequences[i]``'s; ``last`` (``[N]``) feeds the next launch. A copy into ``host``
    (``[>= k * N]``, pinned on CUDA) is queued behind them and ``copied`` records its end (None on the
    CPU, where the copy is synchronous: the same double buffering runs there)."""

    def __init__(self, sequences: List[Sequence], tokens: torch.Tensor, host: torch.Tensor, copied: Optional[torch.cuda.Event]):
        self.sequences = sequences
        self.tokens = tokens
        self.last = tokens[-1]
        self._copied = copied
        self._host = host[: tokens.numel()].view(tokens.shape)
        self._host.copy_(tokens, non_blocking=True)
        if copied is not None:
            copied.record()

    def host_tokens(self) -> List[List[int]]:
        """The tokens as ints, ``[k][N]`` (waits for the copy)."""
        if self._copied is not None:
            self._copied.synchronize()
        return self._host.tolist()


class Engine:
    """Runs requests on ``built_model`` (a :class:`trtllm_flash.build.BuiltModel`).

    Args:
        built_model: has ``config``, ``cache_specs`` and ``forward(input_ids, position_ids, metadata,
            caches, gather_idx) -> logits [N, vocab]`` (``gather_idx`` None: every token's).
        tokenizer: ``decode(ids, skip_special_tokens=True)`` for stop strings, ``eos_token_id``.
        args: the :class:`trtllm_flash.llm_args.LlmArgs` (limits, page size, KV sizing).
        device: where inputs and caches live (default: ``args.resolved_device()``).
    """

    def __init__(self, built_model: Any, tokenizer: Any, args: Any, device: Optional[torch.device | str] = None):
        self.model = built_model
        self.tokenizer = tokenizer
        self.args = args
        self.device = torch.device(device) if device is not None else args.resolved_device()
        kv = args.kv_cache_config
        config = built_model.config
        num_memory = int(getattr(config, "num_memory_tokens", 0) or 0)
        self.memory_token_ids = list(range(int(config.vocab_size), int(config.vocab_size) + num_memory)) if kv.reuse_memory_tokens else []
        pin_rows = 1 if self.memory_token_ids else 0
        self.cache_manager = CacheManager(
            built_model.cache_specs,
            max_batch_size=args.max_batch_size,
            max_seq_len=args.max_seq_len,
            page_size=kv.tokens_per_block,
            num_pages=None if kv.max_tokens is None else -(-kv.max_tokens // kv.tokens_per_block) + 1,
            device=self.device,
            free_memory_fraction=kv.free_gpu_memory_fraction,
            num_snapshots=pin_rows + (kv.max_snapshots if kv.enable_block_reuse else 0),
        )
        self.prefix_cache = PrefixCache(self.cache_manager, kv.enable_block_reuse, pin_rows)
        self.stager = HostToDeviceStager(self.device)
        self.scheduler = Scheduler(self.cache_manager, args.max_num_tokens, args.enable_chunked_prefill, self.prefix_cache)
        self.eos_token_ids = _as_id_set(getattr(tokenizer, "eos_token_id", None))
        self.max_token_id = int(config.vocab_size) + num_memory
        self._sequences: Dict[str, Sequence] = {}
        self._pending: List[RequestOutputDelta] = []
        self._arrivals = itertools.count()
        self.overlap = not args.disable_overlap_scheduler
        self.steps_per_launch = int(getattr(args, "decode_steps_per_launch", 1))
        self._in_flight: Optional[_SampledStep] = None  # the launched step whose tokens are not read yet
        # sampled tokens come back through two pinned buffers, taken in turn: the step in flight holds one
        # while the next step is launched into the other
        on_cuda = self.device.type == "cuda"
        rows = args.max_batch_size * self.steps_per_launch
        self._token_buffers = [torch.empty(rows, dtype=torch.int64, pin_memory=on_cuda) for _ in range(2)]
        self._token_copied = [torch.cuda.Event() if on_cuda else None for _ in range(2)]
        self._launches = 0
        self._suspects: Deque[Sequence] = deque()  # set aside after a failed step, to be retried alone
        self.num_failed_steps = 0
        #: prompt tokens computed (again after a preemption; the memory-token prefix computed once is not counted)
        self.num_prefilled_tokens = 0
        self._compute_memory_prefix()

    def _compute_memory_prefix(self) -> None:
        """Run the memory tokens once (in chunks of ``max_num_tokens``) and pin their pages and state
        in the prefix cache, so that no request prefills them."""
        ids = self.memory_token_ids
        if not ids:
            return
        seq = Sequence("<memory-token prefix>", ids, SamplingParams(max_tokens=1), -1, None)
        seq.slot = self.cache_manager.allocate_slot()
        if not self.cache_manager.ensure_pages(seq.request_id, len(ids)):
            raise ValueError(f"the KV cache ({self.cache_manager.num_pages - 1} pages) cannot hold the {len(ids)} memory tokens; raise kv_cache_config.max_tokens")
        while seq.num_computed < len(ids):
            chunk = ScheduledChunk(seq, min(len(ids) - seq.num_computed, self.args.max_num_tokens), needs_logits=False)
            self._forward(ScheduledBatch(prefills=[chunk]))
            seq.num_computed += chunk.num_tokens
        self.prefix_cache.record(seq.request_id, ids, seq.slot, len(ids), snapshot=True, pinned=True)
        self.cache_manager.free_pages(seq.request_id)
        self.cache_manager.free_slot(seq.slot)

    # -- requests ------------------------------------------------------------------------------

    def add_request(self, request_id: str, prompt_token_ids: Seq[int], sampling_params: Optional[SamplingParams] = None) -> None:
        """Queue a request; ``prompt_token_ids`` include the tokenizer's memory-token prefix.

        Raises ValueError (and queues nothing) for a duplicate id, an empty or too long prompt, a token
        id out of range, or parameters the engine cannot run.
        """
        params = sampling_params or SamplingParams()
        if request_id in self._sequences:
            raise ValueError(f"request id {request_id!r} is already in use; pick a unique id")
        ids = list(prompt_token_ids)
        if not ids:
            raise ValueError("the prompt is empty; give at least one token")
        bad = [t for t in ids if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < self.max_token_id]
        if bad:
            raise ValueError(f"prompt token id {bad[0]!r} is not an integer in [0, {self.max_token_id})")
        if params.n != 1:
            raise ValueError(f"the engine runs one completion per request, got n={params.n}; add n requests (LLM.generate does)")
        memory = self.memory_token_ids
        shared = self.cache_manager.reserved_pages if len(ids) > len(memory) and ids[: len(memory)] == memory else 0
        self._check_length(len(ids), params.max_tokens, shared)
        generator = make_generator(params.seed, self.device)
        seq = Sequence(request_id, ids, params, next(self._arrivals), generator)
        self._sequences[request_id] = seq
        self.scheduler.add(seq)

    def _check_length(self, prompt_len: int, max_tokens: int, shared_pages: int) -> None:
        limit = self.args.max_seq_len
        if prompt_len >= limit:
            raise ValueError(f"the prompt has {prompt_len} tokens (memory tokens included) but max_seq_len is {limit}: shorten it to at most {limit - 1} tokens")
        if prompt_len + max_tokens > limit:
            raise ValueError(f"prompt ({prompt_len} tokens) + max_tokens ({max_tokens}) exceeds max_seq_len {limit}: set max_tokens <= {limit - prompt_len}")
        if not self.cache_manager.can_hold(prompt_len + max_tokens, shared_pages):
            raise ValueError(
                f"prompt + max_tokens ({prompt_len + max_tokens} tokens) needs more KV pages than the cache holds "
                f"({self.cache_manager.num_pages - 1} of {self.cache_manager.page_size} tokens); lower max_tokens or raise kv_cache_config.max_tokens"
            )
        if not self.args.enable_chunked_prefill and prompt_len > self.args.max_num_tokens:
            raise ValueError(f"the prompt has {prompt_len} tokens but max_num_tokens is {self.args.max_num_tokens}: set enable_chunked_prefill true or raise max_num_tokens")

    @property
    def max_request_tokens(self) -> int:
        """Prompt + generated tokens one request can reach: ``max_seq_len``, or less when the KV pool
        (every page but the sentinel) holds fewer tokens."""
        cache = self.cache_manager
        return min(self.args.max_seq_len, (cache.num_pages - 1) * cache.page_size)

    def abort_request(self, request_id: str) -> None:
        """Stop ``request_id`` and free its slot and pages now; the next step reports it with
        finish_reason ``"abort"``. Unknown or finished ids are ignored."""
        seq = self._sequences.pop(request_id, None)
        if seq is None:
            return
        self.scheduler.remove(seq)
        self._pending.append(RequestOutputDelta(request_id, [], True, "abort"))

    def has_unfinished_requests(self) -> bool:
        return bool(self._sequences or self._pending or self._in_flight)

    @property
    def stats(self) -> Dict[str, float]:
        """Queue, cache and prefix-cache counters; ``prefix_cache_hit_rate`` = reused tokens / (reused
        + prefilled tokens) over the engine's life."""
        cache = self.cache_manager
        reused = self.scheduler.num_reused_tokens
        return {
            "num_running": len(self.scheduler.running),
            "num_waiting": len(self.scheduler.waiting),
            "num_used_pages": cache.num_used_pages,
            "num_free_pages": cache.num_free_pages,
            "num_used_slots": cache.num_used_slots,
            "num_preemptions": self.scheduler.num_preemptions,
            "num_failed_steps": self.num_failed_steps,
            "num_cached_pages": cache.num_cached_pages,
            "num_prefix_snapshots": self.prefix_cache.num_snapshots,
            "num_prefilled_tokens": self.num_prefilled_tokens,
            "num_reused_tokens": reused,
            "prefix_cache_hit_rate": reused / max(1, reused + self.num_prefilled_tokens),
        }

    # -- the step ------------------------------------------------------------------------------

    def step(self) -> List[RequestOutputDelta]:
        """Run one forward; return the deltas of every request that gained tokens, finished or failed.

        With the overlap scheduler (the default) the step launches its forward and sampling, then reads
        the tokens of the *previous* step while the GPU works: a request's tokens arrive one step later,
        and a request that stopped is computed one step too many (that token is dropped).
        """
        deltas: List[RequestOutputDelta] = []
        self._next_alone()
        batch = self.scheduler.schedule()
        deltas.extend(self._take_failures())
        launched = self._launch_guarded(batch) if batch else None
        previous, self._in_flight = self._in_flight, launched
        if previous is not None:
            deltas.extend(self._read_tokens(previous))
        if not self.overlap and launched is not None:
            self._in_flight = None
            deltas.extend(self._read_tokens(launched))
        deltas.extend(self._pending)  # aborts, and requests failed during this step
        self._pending = []
        return deltas

    def _launch_guarded(self, batch: ScheduledBatch) -> Optional[_SampledStep]:
        """:meth:`_launch`, or when the forward raises: fail its request if it ran alone, else set every
        request of the batch aside to be retried alone (a half-run forward leaves no trace: the caches of
        the requests set aside are recomputed)."""
        try:
            launched = self._launch(batch)
        except Exception as exc:
            self.num_failed_steps += 1
            reason = f"the engine step failed: {type(exc).__name__}: {exc}"
            seqs = [chunk.seq for chunk in batch.chunks]
            if len(seqs) == 1:
                self._fail(seqs[0], reason)
                return None
            logger.warning("%s; retrying its %d requests one at a time", reason, len(seqs))
            for seq in seqs:
                seq.num_failed_batches += 1
                if seq.num_failed_batches >= MAX_FAILED_BATCHES:
                    self._fail(seq, f"{reason} (in {seq.num_failed_batches} batches)")
                    continue
                self.scheduler.set_aside(seq)
                self._suspects.append(seq)
            return None
        solo = self.scheduler.solo
        if solo is not None and launched is not None and solo in launched.sequences:
            self.scheduler.solo = None  # it sampled a token alone: cleared
        return launched

    def _next_alone(self) -> None:
        """Give the scheduler the next request set aside to run alone, once the previous one is done."""
        solo = self.scheduler.solo
        if solo is not None and solo.status is not SequenceStatus.FINISHED:
            return
        self.scheduler.solo = None
        while self._suspects:
            seq = self._suspects.popleft()
            if seq.status is not SequenceStatus.FINISHED:
                self.scheduler.add(seq, front=True)
                self.scheduler.solo = seq
                return

    def _fail(self, seq: Sequence, reason: str) -> None:
        """End ``seq`` with ``reason`` as its error (reported by this step) and free its cache."""
        logger.warning("request %s failed: %s", seq.request_id, reason)
        self.scheduler.remove(seq)
        del self._sequences[seq.request_id]
        self._pending.append(RequestOutputDelta(seq.request_id, [], True, None, reason))

    def _take_failures(self) -> List[RequestOutputDelta]:
        failed, self.scheduler.failed = self.scheduler.failed, []
        for seq, _ in failed:
            del self._sequences[seq.request_id]
        return [RequestOutputDelta(seq.request_id, [], True, None, error) for seq, error in failed]

    def _launch(self, batch: ScheduledBatch) -> Optional[_SampledStep]:
        """Queue ``batch``'s forward and the sampling of its last tokens on the device, without waiting.
        Every sampled sequence gets a pending token (k of them for a k-step launch); None when no chunk samples."""
        k = self._steps_for(batch)
        if k > 1:
            return self._launch_steps(batch, k)
        logits = self._forward(batch)
        for chunk in batch.chunks:
            seq = chunk.seq
            if seq.num_computed < seq.prompt_len:
                self.num_prefilled_tokens += min(chunk.num_tokens, seq.prompt_len - seq.num_computed)
            seq.num_computed += chunk.num_tokens
        for chunk in batch.prefills:
            self._record_prefix(chunk.seq, snapshot=chunk.seq.num_computed % self.cache_manager.page_size == 0)
        sampled = [c.seq for c in batch.chunks if c.needs_logits]
        if not sampled:
            return None
        try:
            tokens = sample(logits[: len(sampled)], [seq.params for seq in sampled], [seq.generator for seq in sampled])
        except RowSamplingError as err:
            tokens = err.tokens
            for row, reason in err.errors.items():
                self._fail(sampled[row], reason)
        for row, seq in enumerate(sampled):
            if seq.status is not SequenceStatus.FINISHED:
                seq.append_pending(row)
        return self._sampled(sampled, tokens.view(1, -1))

    def _steps_for(self, batch: ScheduledBatch) -> int:
        """Decode steps ``batch`` runs in one launch: ``steps_per_launch`` when it is decode-only, every
        request is greedy with that many tokens of ``max_tokens`` left, and the KV pages for them could
        be given; else 1."""
        k = self.steps_per_launch
        if k == 1 or batch.prefills or not hasattr(self.model, "decode_steps"):
            return 1
        seqs = [c.seq for c in batch.decodes]
        if any(not s.params.greedy or s.num_generated + k > s.params.max_tokens for s in seqs):
            return 1
        if not all(self.cache_manager.ensure_pages(s.request_id, s.num_computed + k) for s in seqs):
            return 1  # pages for the one step were given by the scheduler; the ones taken ahead are used later
        return k

    def _launch_steps(self, batch: ScheduledBatch, k: int) -> _SampledStep:
        """Queue ``k`` greedy decode steps of the decode-only ``batch`` (one graph replay when captured)."""
        input_ids, positions, metadata, _ = self._inputs(batch)
        tokens = self.model.decode_steps(input_ids, positions, metadata, self.cache_manager.tensors, k)
        sampled = [c.seq for c in batch.decodes]
        for row, seq in enumerate(sampled):
            seq.num_computed += k  # its input token and the first k - 1 sampled ones
            for _ in range(k):
                seq.append_pending(row)
        return self._sampled(sampled, tokens)

    def _sampled(self, sequences: List[Sequence], tokens: torch.Tensor) -> _SampledStep:
        turn = self._launches % 2
        self._launches += 1
        return _SampledStep(sequences, tokens, self._token_buffers[turn], self._token_copied[turn])

    def _read_tokens(self, step: _SampledStep) -> List[RequestOutputDelta]:
        """Wait for ``step``'s tokens, put them in their sequences and finish the sequences that stop
        (their tokens past the stop are dropped)."""
        deltas = []
        rows = step.host_tokens()
        for col, seq in enumerate(step.sequences):
            if seq.status is SequenceStatus.FINISHED:
                continue  # aborted, or stopped one launch earlier: the tokens computed beyond its end are dropped
            new, reason = [], None
            for row in rows:
                token = row[col]
                seq.resolve_pending(token)
                new.append(token)
                reason = self._finish_reason(seq, token)
                if reason is not None:
                    break
            if reason is not None:
                self._record_prefix(seq, snapshot=True)  # the next chat turn resumes from here
                self.scheduler.remove(seq)
                del self._sequences[seq.request_id]
            deltas.append(RequestOutputDelta(seq.request_id, new, reason is not None, reason, num_cached_tokens=seq.num_cached_tokens or 0))
        return deltas

    def _record_prefix(self, seq: Sequence, snapshot: bool) -> None:
        """Give the prefix cache ``seq``'s computed pages (and its state, when ``snapshot``); with the
        overlap scheduler the copies are queued behind the step that computed them. A sequence
        preempted since (no slot), or whose state ran past its known tokens (a multi-step launch that
        stopped early, or one still in flight), has nothing to give."""
        if seq.slot is None or seq.num_computed == 0 or seq.num_computed > len(seq.token_ids) - seq.num_pending:
            return
        self.prefix_cache.record(seq.request_id, seq.token_ids, seq.slot, seq.num_computed, snapshot)

    def _forward(self, batch: ScheduledBatch) -> torch.Tensor:
        """Logits ``[N, vocab]`` of the chunks that need them, in batch order. When none does, one row
        (the last token) is still gathered so the model always sees a non-empty ``gather_idx``."""
        input_ids, positions, metadata, gather_idx = self._inputs(batch)
        return self.model.forward(input_ids, positions, metadata, self.cache_manager.tensors, gather_idx)

    def _inputs(self, batch: ScheduledBatch):
        """``(input_ids, position_ids, metadata, gather_idx)`` of ``batch`` on the device, uploaded in one
        copy; ``gather_idx`` None for a decode-only batch. A pending input token is gathered on the
        device from the sampled tokens of the launch in flight."""
        chunks = batch.chunks
        starts = [c.seq.num_computed for c in chunks]
        lens = [c.num_tokens for c in chunks]
        meta = metadata_arrays(
            seq_lens=lens,
            input_pos=starts,
            slot_idx=[c.seq.slot for c in chunks],
            page_table=self.cache_manager.page_table([c.seq.request_id for c in chunks]),
        )
        num_tokens = sum(lens)
        tokens = np.fromiter(
            itertools.chain.from_iterable(c.seq.token_ids[s : s + n] for c, s, n in zip(chunks, starts, lens)),
            dtype=np.int64,
            count=num_tokens,
        )
        positions = np.fromiter(
            itertools.chain.from_iterable(range(s, s + n) for s, n in zip(starts, lens)), dtype=np.int64, count=num_tokens
        )
        ends = list(itertools.accumulate(lens))
        last = [end - 1 for end, c in zip(ends, chunks) if c.needs_logits]
        every_token = len(last) == num_tokens  # decode only: logits of every row, nothing to gather
        # read on the host by the ops: stays on the CPU
        batch_info_host = torch.from_numpy(meta.pop("batch_info_host"))
        host = {**meta, "input_ids": tokens, "position_ids": positions}
        if not every_token:
            host["gather_idx"] = np.array(last or [num_tokens - 1], dtype=np.int64)
        pending = [(end - 1, c.seq.pending_row) for end, c in zip(ends, chunks) if c.seq.num_pending]
        if pending:  # [2, P]: index into input_ids, row of the sampled tokens in flight
            host["feed"] = np.array(pending, dtype=np.int64).T
        # one host-to-device copy for the whole step
        on_device = self.stager.upload(host)
        input_ids = on_device["input_ids"]
        if pending:
            feed = on_device["feed"]
            input_ids.index_copy_(0, feed[0], self._in_flight.last.index_select(0, feed[1]))
        metadata = BatchMetadata(batch_info_host=batch_info_host, **{name: on_device[name] for name in meta})
        return input_ids, on_device["position_ids"], metadata, on_device.get("gather_idx")

    def _finish_reason(self, seq: Sequence, token: int) -> Optional[str]:
        params = seq.params
        if (token in self.eos_token_ids and not params.ignore_eos) or token in params.stop_token_ids:
            return "stop"
        if params.stop:
            text = self.tokenizer.decode(seq.output_token_ids, skip_special_tokens=True)
            if find_stop_string(text, params.stop, seq.text_len_checked) is not None:
                return "stop"
            seq.text_len_checked = len(text)
        if seq.num_output_tokens >= params.max_tokens:
            return "length"
        return None


def _as_id_set(value: Any) -> set:
    if value is None:
        return set()
    if isinstance(value, int):
        return {value}
    return {int(v) for v in value}
