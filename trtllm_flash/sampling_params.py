"""SamplingParams: how one request picks its tokens and when it stops.

The field names are TensorRT-LLM's / vLLM's. Invalid values and unknown keys raise a one-line
``ValueError`` saying what to change (an unknown key names the closest valid one).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, List, Optional, Sequence, Union

from trtllm_flash.hints import closest_key_hint

#: a temperature below this is greedy: dividing logits by it would overflow to inf (and sample NaN)
GREEDY_BELOW_TEMPERATURE = 1e-5
#: the largest ``top_k`` (values at or above the vocabulary size keep every token, like 0)
MAX_TOP_K = 2**31 - 1
#: seeds are 64-bit signed non-negative integers (``torch.Generator.manual_seed`` takes them whole)
MAX_SEED = 2**63 - 1


@dataclass(init=False)
class SamplingParams:
    """Per-request sampling settings.

    Attributes:
        max_tokens: tokens to generate at most (>= 1).
        temperature: 0 = greedy (argmax; ``top_k``/``top_p``/``seed`` are then ignored), else softmax
            temperature; a temperature below :data:`GREEDY_BELOW_TEMPERATURE` (1e-5) is greedy too.
        top_k: keep the ``top_k`` most likely tokens (0 = all; at most :data:`MAX_TOP_K`).
        top_p: keep the smallest set of most likely tokens whose probability reaches ``top_p`` (1 = all).
        seed: seeds this request's own ``torch.Generator``: the same seed gives the same tokens whatever
            else is in the batch. None = a fresh random seed. In ``[0, 2**63 - 1]``.
        stop_token_ids: generation ends after any of these tokens (kept in the output ids).
        stop: strings; generation ends when the detokenized output contains one, and the text is cut
            before it.
        ignore_eos: keep generating past the tokenizer's end-of-sequence token.
        n: completions per prompt (``LLM.generate`` runs ``n`` requests; the engine takes n = 1).
    """

    max_tokens: int = 16
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    seed: Optional[int] = None
    stop_token_ids: List[int] = field(default_factory=list)
    stop: List[str] = field(default_factory=list)
    ignore_eos: bool = False
    n: int = 1

    def __init__(
        self,
        *,
        max_tokens: int = 16,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: Optional[int] = None,
        stop_token_ids: Optional[Sequence[int]] = None,
        stop: Union[str, Sequence[str], None] = None,
        ignore_eos: bool = False,
        n: int = 1,
        **unknown: Any,
    ):
        if unknown:
            key = sorted(unknown)[0]
            raise ValueError(f"unknown sampling parameter {key!r}{closest_key_hint(key, [f.name for f in fields(self)])}")
        self.max_tokens = _int("max_tokens", max_tokens, minimum=1)
        self.temperature = _float("temperature", temperature)
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
        self.top_k = _int("top_k", top_k, minimum=0, maximum=MAX_TOP_K)
        self.top_p = _float("top_p", top_p)
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        self.seed = None if seed is None else _int("seed", seed, minimum=0, maximum=MAX_SEED)
        self.stop_token_ids = [_int("stop_token_ids entry", t, minimum=0) for t in (stop_token_ids or [])]
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        if not all(isinstance(s, str) and s for s in stops):
            raise ValueError(f"stop must be a non-empty string or a list of non-empty strings, got {stop!r}")
        self.stop = stops
        if not isinstance(ignore_eos, bool):
            raise ValueError(f"ignore_eos must be true or false, got {ignore_eos!r}")
        self.ignore_eos = ignore_eos
        self.n = _int("n", n, minimum=1)

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_BELOW_TEMPERATURE


def _int(name: str, value: Any, minimum: int, maximum: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def _float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)
