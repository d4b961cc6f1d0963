"""Sequence: one request's tokens, progress and cache holdings, and the per-step delta it reports."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import List, Optional

import torch

from trtllm_flash.sampling_params import SamplingParams


class SequenceStatus(enum.Enum):
    WAITING = "waiting"    # queued (new, or preempted and to be recomputed); holds no cache
    RUNNING = "running"    # holds a state slot and KV pages
    FINISHED = "finished"  # done; holds nothing


@dataclass
class RequestOutputDelta:
    """What one request gained in one step.

    ``finish_reason`` is ``"stop"`` (end-of-sequence, a stop token or a stop string), ``"length"``
    (``max_tokens`` reached) or ``"abort"``, set when ``finished``; ``error`` says why a request failed.
    """

    request_id: str
    new_token_ids: List[int]
    finished: bool
    finish_reason: Optional[str] = None
    error: Optional[str] = None


class Sequence:
    """A request in the engine.

    ``token_ids`` = prompt + generated tokens; the first ``num_computed`` are in the caches. A sequence
    whose only uncomputed token is its last one, with a cached prefix, is *decoding*; otherwise it is
    *prefilling* (a fresh prompt, a chunk continuing one, or a recompute after preemption).
    """

    def __init__(self, request_id: str, prompt_token_ids: List[int], params: SamplingParams, arrival: int, generator: torch.Generator):
        self.request_id = request_id
        self.prompt_len = len(prompt_token_ids)
        self.token_ids: List[int] = list(prompt_token_ids)
        self.params = params
        self.arrival = arrival
        self.generator = generator
        self.status = SequenceStatus.WAITING
        self.num_computed = 0
        self.slot: Optional[int] = None
        self.finish_reason: Optional[str] = None
        self.text_len_checked = 0

    @property
    def output_token_ids(self) -> List[int]:
        return self.token_ids[self.prompt_len:]

    @property
    def num_uncomputed(self) -> int:
        return len(self.token_ids) - self.num_computed

    @property
    def is_decoding(self) -> bool:
        return self.num_computed > 0 and self.num_uncomputed == 1

    @property
    def is_recompute(self) -> bool:
        """A preempted sequence rebuilding its cache from prompt + generated tokens."""
        return len(self.token_ids) > self.prompt_len

    def __repr__(self) -> str:
        return f"Sequence({self.request_id!r}, {self.status.value}, computed {self.num_computed}/{len(self.token_ids)}, slot {self.slot})"
