"""The two ways a caller can hand the model its memory (meta) tokens, and the one check that keeps them apart.

Nemotron-Flash prepends ``num_memory_tokens`` learned vectors to every sequence (positions ``0 .. n-1``; the
first real token is at position ``n``). Our embedding table holds them as rows ``vocab_size .. vocab_size + n - 1``
(memory token ``i`` has id ``vocab_size + i``), so there are two ways to feed them:

* the tokenizer way: the ids already start with the memory-token ids (our tokenizer, AutoDeploy's tokenizer,
  the exported graph and the runtime). The logits cover every id, memory tokens included.
* the Hugging Face way: real-token ids only, as the published remote code is called. The memory tokens are
  prepended at the embedding level on the sequence's first forward and their outputs dropped, so the logits
  cover exactly the ids passed.

:func:`memory_prefix_to_add` decides which way a sequence-start forward is, from the ids themselves, and refuses
everything that is neither -- so a call can never silently double or omit the memory tokens.
"""
from __future__ import annotations

import torch

from trtllm_flash.config import NemotronFlashConfig


def memory_token_ids(config: NemotronFlashConfig, device: torch.device) -> torch.Tensor:
    """``[n]`` int64: ``vocab_size .. vocab_size + n - 1``."""
    return torch.arange(config.vocab_size, config.vocab_size + config.num_memory_tokens, device=device)


def memory_prefix_to_add(input_ids: torch.Tensor, config: NemotronFlashConfig, seen_tokens: int) -> int:
    """How many memory tokens to prepend to ``input_ids [b, s]``: ``n`` for real-token ids on a sequence's first
    forward (``seen_tokens == 0``), else 0. ``ValueError`` for ids out of range, memory-token ids anywhere but as
    the exact full prefix of every row of a first forward, or memory-token ids in a forward that continues a
    cached sequence. (One host sync: the eager reference only; the exported graph never calls this.)"""
    n, vocab = config.num_memory_tokens, config.vocab_size
    if bool(((input_ids < 0) | (input_ids >= vocab + n)).any()):
        raise ValueError(f"input_ids must lie in [0, {vocab + n}) (vocab_size {vocab} + {n} memory tokens), "
                         f"got min {int(input_ids.min())} max {int(input_ids.max())}")
    is_memory = input_ids >= vocab
    if not bool(is_memory.any()):
        return n if seen_tokens == 0 else 0
    if seen_tokens:
        raise ValueError(f"input_ids continue a cached sequence ({seen_tokens} tokens seen) but hold memory-token ids "
                         f"(>= vocab_size {vocab}): they belong only at the start of a sequence")
    expected = memory_token_ids(config, input_ids.device)
    if input_ids.shape[1] < n or not bool((input_ids[:, :n] == expected).all()) or bool(is_memory[:, n:].any()):
        raise ValueError(f"input_ids hold memory-token ids (>= vocab_size {vocab}) but not as the exact prefix "
                         f"{vocab} .. {vocab + n - 1} of every row: pass real-token ids only (the memory tokens are "
                         f"then prepended) or the tokenizer's ids (which start with them)")
    return 0


def prepend_memory(input_ids: torch.Tensor, config: NemotronFlashConfig) -> torch.Tensor:
    """``[b, s]`` -> ``[b, n + s]``: the memory-token ids, then ``input_ids``."""
    prefix = memory_token_ids(config, input_ids.device).expand(input_ids.shape[0], -1)
    return torch.cat([prefix, input_ids], dim=1)
