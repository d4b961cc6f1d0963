"""Batched token sampling over the gathered logits, and stop-string search.

Greedy rows take the argmax. Other rows are scaled by their temperature, masked by their top-k and
top-p (batched over rows), and drawn with the row's own ``torch.Generator`` one row at a time, so a
seeded request draws the same tokens whatever else shares its batch. A row that cannot be sampled
fails alone (:class:`RowSamplingError`): the engine evicts that request and keeps the others' tokens.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch

from trtllm_flash.ops.argmax import argmax_rows
from trtllm_flash.sampling_params import SamplingParams


def make_generator(seed: Optional[int], device: torch.device | str) -> torch.Generator:
    """A generator on ``device`` seeded with ``seed`` (None: a fresh random seed)."""
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


def top_k_mask(logits: torch.Tensor, top_k: torch.Tensor) -> torch.Tensor:
    """``logits [N, V]`` with every token outside its row's ``top_k [N]`` best set to -inf (0 keeps all).

    Ties with the k-th best logit are kept.
    """
    vocab = logits.shape[-1]
    k = torch.where(top_k > 0, top_k.clamp(max=vocab), torch.full_like(top_k, vocab))
    kth_best = logits.sort(dim=-1, descending=True).values.gather(-1, (k - 1).unsqueeze(-1))
    return logits.masked_fill(logits < kth_best, float("-inf"))


def top_p_mask(logits: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """``logits [N, V]`` keeping, per row, the most likely tokens until their probability reaches
    ``top_p [N]`` (the most likely token is always kept); the rest become -inf."""
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs
    drop_sorted = mass_before >= top_p.unsqueeze(-1)
    drop_sorted[:, 0] = False
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


class RowSamplingError(Exception):
    """Some rows could not be sampled (e.g. their probabilities were NaN); the others were.

    ``tokens`` is what :func:`sample` would return, with 0 in the failed rows; ``errors`` maps each
    failed row to a one-line reason. Every other row drew exactly what it draws without the failed
    ones (rows never share a generator or a reduction).
    """

    def __init__(self, tokens: torch.Tensor, errors: Dict[int, str]):
        super().__init__(f"sampling failed for rows {sorted(errors)}: {next(iter(errors.values()))}")
        self.tokens = tokens
        self.errors = errors


def sample(logits: torch.Tensor, params: Sequence[SamplingParams], generators: Sequence[Optional[torch.Generator]]) -> torch.Tensor:
    """One token per row of ``logits [N, V]`` (float32) with row ``i`` following ``params[i]``:
    int64 ``[N]`` on ``logits.device``, computed without waiting for the device.

    ``generators[i]`` is used by non-greedy rows (it must live on ``logits.device``). Raises
    :class:`RowSamplingError` when some rows fail; the other rows' tokens are in it.
    """
    if logits.dim() != 2 or logits.shape[0] != len(params) or len(generators) != len(params):
        raise ValueError(f"sample needs logits [N, V] with one params and generator per row; got {tuple(logits.shape)}, {len(params)}, {len(generators)}")
    tokens = argmax_rows(logits)
    random_rows = [i for i, p in enumerate(params) if not p.greedy]
    if not random_rows:
        return tokens
    try:
        probs = _probabilities(logits, random_rows, params)
    except (RuntimeError, ValueError, OverflowError):
        probs = None   # some row's parameters broke the batched masks: each row alone below
    errors: Dict[int, str] = {}
    for j, i in enumerate(random_rows):
        try:
            row_probs = probs[j] if probs is not None else _probabilities(logits, [i], params)[0]
            tokens[i] = torch.multinomial(row_probs, 1, generator=generators[i])[0]
        except (RuntimeError, ValueError, OverflowError) as exc:
            errors[i] = f"sampling failed: {type(exc).__name__}: {exc}"
            tokens[i] = 0
    if errors:
        raise RowSamplingError(tokens, errors)
    return tokens


def _probabilities(logits: torch.Tensor, rows: List[int], params: Sequence[SamplingParams]) -> torch.Tensor:
    """``[len(rows), V]``: the sampling distribution of each of ``rows`` (temperature, top-k, top-p)."""
    index = torch.tensor(rows, device=logits.device)
    chosen = [params[i] for i in rows]
    temperature = torch.tensor([p.temperature for p in chosen], device=logits.device).unsqueeze(-1)
    scaled = logits.index_select(0, index).float() / temperature
    scaled = top_k_mask(scaled, torch.tensor([p.top_k for p in chosen], device=logits.device))
    scaled = top_p_mask(scaled, torch.tensor([p.top_p for p in chosen], device=logits.device))
    return scaled.softmax(dim=-1)


def find_stop_string(text: str, stops: Sequence[str], search_from: int = 0) -> Optional[int]:
    """Index in ``text`` where the earliest stop string starts, looking at matches that end after
    ``search_from`` (None: no stop string)."""
    found = [text.find(stop, max(0, search_from - len(stop) + 1)) for stop in stops]
    found = [i for i in found if i >= 0]
    return min(found) if found else None
