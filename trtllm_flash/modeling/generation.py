"""Cached autoregressive generation of the reference model: prefill once, then one token per step."""
from __future__ import annotations

from typing import Optional

import torch


def sample_next(logits: torch.Tensor, temperature: float, top_k: int, top_p: float,
                generator: Optional[torch.Generator]) -> torch.Tensor:
    """``logits [b, vocab]`` fp32 -> token ids ``[b]``. ``temperature == 0`` is greedy (argmax); otherwise
    softmax(logits / temperature) restricted to the ``top_k`` largest (0 = all) and the smallest set whose
    probability reaches ``top_p``, sampled with ``generator``."""
    if temperature == 0.0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        before = probs.cumsum(dim=-1) - probs  # probability mass strictly before each token
        sorted_logits = sorted_logits.masked_fill(before >= top_p, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def validate_sampling(max_new_tokens: int, temperature: float, top_k: int, top_p: float) -> None:
    """``ValueError`` naming the bad argument."""
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")


@torch.no_grad()
def generate_tokens(model, input_ids: torch.Tensor, max_new_tokens: int, temperature: float = 0.0, top_k: int = 0,
                    top_p: float = 1.0, eos_token_id: Optional[int] = None, seed: Optional[int] = None) -> torch.Tensor:
    """Prompt ``input_ids [b, s]`` (equal lengths, memory-token ids included) -> ``[b, s + n]``, n <= max_new_tokens.

    One prefill forward, then one cached forward per new token. A sequence that produced ``eos_token_id`` keeps
    emitting it; generation stops early when every sequence has. ``seed`` makes sampling reproducible.
    """
    validate_sampling(max_new_tokens, temperature, top_k, top_p)
    if input_ids.dim() != 2 or input_ids.shape[1] == 0:
        raise ValueError(f"input_ids must be a non-empty [batch, seq] tensor, got shape {tuple(input_ids.shape)}")
    generator = None
    if seed is not None:
        generator = torch.Generator(device=input_ids.device).manual_seed(seed)
    cache = model.new_cache()
    logits = model(input_ids, cache=cache)[:, -1]
    tokens = [input_ids]
    finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
    for step in range(max_new_tokens):
        next_ids = sample_next(logits, temperature, top_k, top_p, generator)
        if eos_token_id is not None:
            next_ids = next_ids.masked_fill(finished, eos_token_id)
            finished |= next_ids == eos_token_id
        tokens.append(next_ids[:, None])
        if bool(finished.all()) or step == max_new_tokens - 1:
            break
        logits = model(next_ids[:, None], cache=cache)[:, -1]
    return torch.cat(tokens, dim=1)
