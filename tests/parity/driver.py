"""A minimal test driver for BuiltModel.forward: caches sized from ``cache_specs``, one slot and a run of
KV pages per sequence, and flattened steps (prefill chunks first, then one-token decodes).

Deliberately independent of the runtime's CacheManager / scheduler, so the parity tests check the built
graph alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import torch

from trtllm_flash.ops.interface import SENTINEL_PAGE, PagedKVCache, StateCache, window_pages
from trtllm_flash.ops.metadata import build_metadata


@dataclass
class Request:
    slot: int
    pages: List[int]
    tokens: List[int] = field(default_factory=list)
    cached: int = 0  # tokens already in the caches


class Driver:
    def __init__(self, built, max_batch_size: int = 8, max_seq_len: int = 256, page_size: int = 16, device: str = "cpu",
                 explicit_gather: bool = True):
        self.built = built
        self.explicit_gather = explicit_gather  # False: gather_idx None (every token's logits, no gather)
        self.device = torch.device(device)
        self.page_size = page_size
        self.num_slots = max_batch_size + 1  # the last slot is the sentinel
        self.pages_per_seq = math.ceil(max_seq_len / page_size)
        num_pages = 1 + max_batch_size * self.pages_per_seq  # page 0 is the sentinel
        self.caches: Dict[str, torch.Tensor] = {}
        for name, spec in built.cache_specs.items():
            if isinstance(spec, StateCache):
                self.caches[name] = torch.zeros(self.num_slots, *spec.shape, dtype=spec.dtype, device=device)
            elif isinstance(spec, PagedKVCache):
                pages = self.num_slots * window_pages(spec.sliding_window, page_size) if spec.sliding_window else num_pages
                self.caches[name] = torch.zeros(pages, 2, spec.num_kv_heads, page_size, spec.head_dim, dtype=spec.dtype, device=device)
            else:
                raise TypeError(f"unknown cache spec {spec!r}")
        self.free_slots = list(range(max_batch_size))
        self.next_page = SENTINEL_PAGE + 1

    def add(self, tokens: Sequence[int]) -> Request:
        pages = list(range(self.next_page, self.next_page + self.pages_per_seq))
        self.next_page += self.pages_per_seq
        return Request(slot=self.free_slots.pop(0), pages=pages, tokens=list(tokens))

    def step(self, work: List[Tuple[Request, int]]) -> List[torch.Tensor]:
        """Run ``(sequence, num_new_tokens)`` items (prefills before decodes) in one forward; returns the
        logits ``[num_new_tokens, vocab]`` of each item."""
        lens = [n for _, n in work]
        starts = [s.cached for s, _ in work]
        meta = build_metadata(lens, starts, [s.slot for s, _ in work], [s.pages for s, _ in work], device=self.device)
        ids = torch.tensor([t for s, n in work for t in s.tokens[s.cached : s.cached + n]], device=self.device)
        pos = torch.cat([torch.arange(s.cached, s.cached + n) for s, n in work]).to(self.device)
        gather = torch.arange(ids.numel(), device=self.device) if self.explicit_gather else None
        logits = self.built.forward(ids, pos, meta, self.caches, gather)
        for s, n in work:
            s.cached += n
        return list(torch.split(logits, lens))


@torch.no_grad()
def reference_logits(model, tokens: Sequence[int]) -> torch.Tensor:
    """The eager model over the whole sequence from scratch: ``[len(tokens), vocab]`` fp32."""
    device = next(model.parameters()).device
    ids = torch.tensor([list(tokens)], device=device)
    return model(ids, torch.arange(len(tokens), device=device)[None])[0].float()
