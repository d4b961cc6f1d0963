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
    ``num_cached_tokens``: prompt tokens (memory tokens included) taken from the prefix cache instead
    of being prefilled.
    """

    request_id: str
    new_token_ids: List[int]
    finished: bool
    finish_reason: Optional[str] = None
    error: Optional[str] = None
    num_cached_tokens: int = 0


#: the value a sampled token holds in ``Sequence.token_ids`` until its step's tokens reach the host
PENDING_TOKEN = -1


class Sequence:
    """A request in the engine.

    ``token_ids`` = prompt + generated tokens; the first ``num_computed`` are in the caches. A sequence
    whose only uncomputed token is its last one, with a cached prefix, is *decoding*; otherwise it is
    *prefilling* (a fresh prompt, a chunk continuing one, or a recompute after preemption).

    With the overlap scheduler the last ``num_pending`` generated tokens are :data:`PENDING_TOKEN`: they
    were sampled on the GPU by a step whose tokens the host has not read yet. The newest one is row
    ``pending_row`` of that step's sampled tokens, from where the next step's input is gathered on the GPU.
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
        self.num_pending = 0
        self.pending_row: Optional[int] = None
        #: prompt tokens taken from the prefix cache at the first admission (None: not admitted yet)
        self.num_cached_tokens: Optional[int] = None
        #: where the current prefill chunk must end (a page boundary the prefix cache snapshots); None: anywhere
        self.chunk_stop: Optional[int] = None
        self.num_failed_batches = 0  # engine steps that failed with this sequence in a batch of several

    @property
    def output_token_ids(self) -> List[int]:
        """Generated tokens the host knows (pending ones excluded)."""
        return self.token_ids[self.prompt_len : self.prompt_len + self.num_output_tokens]

    @property
    def num_output_tokens(self) -> int:
        """``len(output_token_ids)``, without building the list."""
        return self.num_generated - self.num_pending

    @property
    def num_generated(self) -> int:
        """Generated tokens, pending ones included."""
        return len(self.token_ids) - self.prompt_len

    def append_pending(self, row: int) -> None:
        """A token was sampled into row ``row`` of the step's sampled tokens; its value comes later."""
        self.token_ids.append(PENDING_TOKEN)
        self.num_pending += 1
        self.pending_row = row

    def resolve_pending(self, token: int) -> None:
        """The oldest pending token is ``token``."""
        self.token_ids[len(self.token_ids) - self.num_pending] = token
        self.num_pending -= 1

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
