"""A deterministic toy BuiltModel whose next token depends on the whole history through every kind of
cache the runtime manages, so a scheduling or caching bug changes the tokens.

Per sequence the toy keeps
* a recurrent hash ``h`` in a state slot (``h = (31 h + token + 1) mod 9973``),
* every token in a paged "KV" cache (value = token id), read back through the page table,
* the last ``WINDOW`` tokens in a sliding-window ring addressed by slot (interface.py's layout).

The next token is ``(h + 7 * sum_k (k + 1) token_k + 13 * sum(window tokens)) mod VOCAB``, computed
directly from the history by :func:`reference_next_token`. Logits peak at that token and fall off
with the cyclic distance, so sampling has a proper distribution too.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Callable, Dict, List, Optional

import torch

from trtllm_flash.llm_args import LlmArgs, load_llm_args
from trtllm_flash.ops.interface import SENTINEL_PAGE, PagedKVCache, StateCache, window_pages
from trtllm_flash.ops.metadata import BatchMetadata, check_metadata
from trtllm_flash.runtime.engine import Engine
from trtllm_flash.runtime.multi_step import greedy_decode_steps
from trtllm_flash.sampling_params import SamplingParams

VOCAB = 64
NUM_MEMORY_TOKENS = 2
WINDOW = 5
MODULUS = 9973


def reference_next_token(history: List[int]) -> int:
    h = 0
    for token in history:
        h = (31 * h + token + 1) % MODULUS
    weighted = sum((k + 1) * t for k, t in enumerate(history))
    return (h + 7 * weighted + 13 * sum(history[-WINDOW:])) % VOCAB


def reference_generate(prompt: List[int], max_tokens: int, eos: Optional[int] = None) -> List[int]:
    """Greedy tokens of the toy run alone, without any cache."""
    tokens = list(prompt)
    out: List[int] = []
    while len(out) < max_tokens:
        token = reference_next_token(tokens)
        out.append(token)
        tokens.append(token)
        if token == eos:
            break
    return out


def toy_logits(score: int) -> torch.Tensor:
    distance = (torch.arange(VOCAB) - score) % VOCAB
    return -torch.minimum(distance, VOCAB - distance).float() * 0.75


class FakeBuiltModel:
    """Follows the BuiltModel contract; checks the metadata it is given and never touches the sentinel
    page or slot for a live row (it raises instead). ``poison``: a token id whose presence in the
    input makes the forward raise, after it has updated the caches of the rows before it (a forward
    that fails half-way)."""

    def __init__(self, poison: Optional[int] = None):
        self.poison = poison
        self.config = SimpleNamespace(vocab_size=VOCAB, num_memory_tokens=NUM_MEMORY_TOKENS)
        self.cache_specs = {
            "state": StateCache((1,), torch.float32),
            "kv": PagedKVCache(num_kv_heads=1, head_dim=1, dtype=torch.float32),
            "window_kv": PagedKVCache(num_kv_heads=1, head_dim=1, dtype=torch.float32, sliding_window=WINDOW),
        }
        self.batches: List[Dict[str, int]] = []

    def forward(self, input_ids, position_ids, metadata: BatchMetadata, caches, gather_idx=None):
        gathered = list(range(input_ids.numel())) if gather_idx is None else gather_idx.tolist()
        state, kv, ring_kv = caches["state"], caches["kv"], caches["window_kv"]
        page_size = kv.shape[3]
        ring = window_pages(WINDOW, page_size)
        num_slots = state.shape[0]
        check_metadata(input_ids.numel(), metadata.batch_info_host, metadata.cu_seqlen, metadata.slot_idx, num_slots)
        cu = metadata.cu_seqlen.tolist()
        self.batches.append({"num_prefill": metadata.num_prefill, "num_decode": metadata.num_decode, "num_tokens": input_ids.numel()})
        scores: Dict[int, int] = {}
        for i in range(len(cu) - 1):
            slot = int(metadata.slot_idx[i])
            if slot == num_slots - 1:
                raise AssertionError("a live row uses the sentinel slot")
            start_pos = int(metadata.input_pos[i])
            h = int(state[slot, 0]) if bool(metadata.use_initial_states[i]) else 0
            for flat in range(cu[i], cu[i + 1]):
                token, pos = int(input_ids[flat]), int(position_ids[flat])
                if token == self.poison:
                    raise RuntimeError(f"poisoned token {token}")
                if pos != start_pos + flat - cu[i]:
                    raise AssertionError(f"position {pos} of row {i} does not follow input_pos {start_pos}")
                page = int(metadata.page_table[i, pos // page_size])
                if page == SENTINEL_PAGE:
                    raise AssertionError("a live token is written to the sentinel page")
                kv[page, 0, 0, pos % page_size, 0] = token
                ring_kv[slot * ring + (pos // page_size) % ring, 0, 0, pos % page_size, 0] = token
                h = (31 * h + token + 1) % MODULUS
                if flat in gathered:
                    scores[flat] = self._score(h, pos, metadata.page_table[i], kv, ring_kv, slot, ring)
            state[slot, 0] = h
        return torch.stack([toy_logits(scores[g]) for g in gathered]) if scores else toy_logits(0).expand(len(gathered), -1)

    def decode_steps(self, input_ids, position_ids, metadata: BatchMetadata, caches, k: int):
        """``k`` greedy decode steps through :func:`greedy_decode_steps` (the loop the built model runs)."""
        inputs = {"input_ids": input_ids.reshape(1, -1), "position_ids": position_ids.reshape(1, -1), "input_pos": metadata.input_pos}

        def run(input_ids, position_ids, input_pos):
            return self.forward(input_ids.reshape(-1), position_ids.reshape(-1), metadata, caches)

        return greedy_decode_steps(run, inputs, torch.empty(k, input_ids.numel(), dtype=torch.int64))

    @staticmethod
    def _score(h, pos, pages, kv, ring_kv, slot, ring) -> int:
        page_size = kv.shape[3]
        history = [int(kv[int(pages[p // page_size]), 0, 0, p % page_size, 0]) for p in range(pos + 1)]
        window = [int(ring_kv[slot * ring + (p // page_size) % ring, 0, 0, p % page_size, 0]) for p in range(max(0, pos - WINDOW + 1), pos + 1)]
        weighted = sum((k + 1) * t for k, t in enumerate(history))
        return (h + 7 * weighted + 13 * sum(window)) % VOCAB


class FakeTokenizer:
    """Token ``i < 26`` is the letter ``chr(97 + i)``, other ids decode to ``"_"``; the memory tokens are
    ids ``VOCAB, VOCAB + 1`` and decode to nothing."""

    memory_token_ids = [VOCAB + i for i in range(NUM_MEMORY_TOKENS)]

    def __init__(self, eos_token_id: Optional[int] = None):
        self.eos_token_id = eos_token_id

    def encode(self, text: str) -> List[int]:
        return self.memory_token_ids + [ord(c) - 97 for c in text]

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return "".join(chr(97 + i) if i < 26 else "_" for i in ids if i < VOCAB)


def make_args(**overrides) -> LlmArgs:
    base = {"model": "fake", "device": "cpu", "max_batch_size": 4, "max_seq_len": 64, "max_num_tokens": 64,
            "kv_cache_config": {"tokens_per_block": 4, "max_tokens": 256}}
    return load_llm_args([], base, **overrides)


def make_engine(tokenizer: Optional[FakeTokenizer] = None, poison: Optional[int] = None, **overrides) -> Engine:
    """An engine over the toy (``poison``: see :class:`FakeBuiltModel`); ``engine.model.batches`` lists the
    forwards after its set-up (which runs the memory tokens once, see test_prefix_cache.py)."""
    engine = Engine(FakeBuiltModel(poison), tokenizer or FakeTokenizer(), make_args(**overrides))
    engine.model.batches.clear()
    return engine


def run_all(engine: Engine, requests: Dict[str, List[int]], params: Dict[str, SamplingParams],
            arrivals: Optional[Dict[str, int]] = None, max_steps: int = 10_000,
            before_step: Optional[Callable[[int], None]] = None) -> Dict[str, dict]:
    """Add each request at its arrival step (default 0) and step until all finish (``before_step(i)``
    runs before step ``i``).

    Returns request id -> ``{"tokens", "finish_reason", "error"}``.
    """
    arrivals = arrivals or {}
    results = {rid: {"tokens": [], "finish_reason": None, "error": None} for rid in requests}
    pending = dict(requests)
    for step in range(max_steps):
        for rid in [r for r in pending if arrivals.get(r, 0) <= step]:
            engine.add_request(rid, pending.pop(rid), params[rid])
        if not pending and not engine.has_unfinished_requests():
            return results
        if before_step is not None:
            before_step(step)
        for delta in engine.step():
            results[delta.request_id]["tokens"].extend(delta.new_token_ids)
            if delta.finished:
                results[delta.request_id]["finish_reason"] = delta.finish_reason
                results[delta.request_id]["error"] = delta.error
    raise AssertionError(f"requests did not finish in {max_steps} steps")
