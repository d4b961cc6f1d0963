"""Prompt text, chat messages or token ids -> the token ids the engine runs (memory tokens first).

The tokenizer prepends the model's memory tokens when it encodes text; a prompt given as token ids
gets the same prefix here, so every prompt reaches the engine the same way. Clients never send
memory-token ids themselves: ids outside the text vocabulary are refused with a 400.
"""
from __future__ import annotations

from typing import Any, List, Sequence, Union

from .errors import bad_request
from .protocol import ChatMessage


def encode_completion_prompt(tokenizer: Any, prompt: Union[str, List[int]]) -> List[int]:
    """``prompt`` of ``/v1/completions`` (a string or a list of token ids) as engine input ids."""
    if isinstance(prompt, str):
        if not prompt:
            raise bad_request("'prompt' is empty; send at least one character.", param="prompt")
        return list(tokenizer.encode(prompt))
    if not prompt:
        raise bad_request("'prompt' is an empty list of token ids; send at least one token id.", param="prompt")
    vocab_size = tokenizer.text_vocab_size
    bad = next((token for token in prompt if not 0 <= token < vocab_size), None)
    if bad is not None:
        raise bad_request(f"Token id {bad} in 'prompt' is outside the vocabulary; use ids in [0, {vocab_size}).",
                          param="prompt")
    return list(tokenizer.memory_token_ids) + list(prompt)


def encode_chat(tokenizer: Any, messages: Sequence[ChatMessage]) -> List[int]:
    """Chat ``messages`` (text content, checked by the protocol) rendered by the tokenizer's chat template,
    ending with the assistant's turn."""
    conversation = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in messages]
    return list(tokenizer.apply_chat_template(conversation, add_generation_prompt=True))
