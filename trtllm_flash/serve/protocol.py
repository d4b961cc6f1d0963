"""The OpenAI wire format: request bodies (validated by pydantic) and response bodies.

Only what the server implements is modelled. Request fields the server does not support but that
clients commonly send with their default values (``presence_penalty: 0``, ``logprobs: null`` ...)
are accepted and ignored; a non-default value of a field that would change the answer is refused
with a 400 by :func:`unsupported_field`, so a client never silently gets a different behaviour.
"""
from __future__ import annotations

import time
import uuid
from typing import Any, Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field


class StreamOptions(BaseModel):
    """``stream_options``: ``include_usage`` adds a final chunk holding the usage counts."""

    include_usage: bool = False


class SamplingFields(BaseModel):
    """The sampling fields shared by ``/v1/completions`` and ``/v1/chat/completions``."""

    model_config = ConfigDict(extra="ignore")

    model: str
    max_tokens: Optional[int] = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int = Field(default=0, ge=0, description="extension: 0 keeps every token")
    seed: Optional[int] = None
    stop: Optional[Union[str, List[str]]] = None
    n: int = Field(default=1, ge=1)
    stream: bool = False
    stream_options: Optional[StreamOptions] = None
    ignore_eos: bool = Field(default=False, description="extension: keep generating past EOS")
    user: Optional[str] = None

    # refused unless left at their defaults (see unsupported_field)
    logprobs: Optional[Union[bool, int]] = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: Optional[Dict[str, float]] = None

    def stop_strings(self) -> List[str]:
        """``stop`` as a list (the API takes one string or a list)."""
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


class ChatMessage(BaseModel):
    """One chat message; ``content`` is a string or a list of ``{"type": "text", "text": ...}`` parts."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: Union[str, List[Dict[str, Any]]]

    def text(self) -> str:
        """The message's text; parts of a type other than ``text`` are refused by the caller."""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.get("text", "") for part in self.content)


class ChatCompletionRequest(SamplingFields):
    """Body of ``POST /v1/chat/completions``."""

    messages: List[ChatMessage] = Field(min_length=1)
    max_completion_tokens: Optional[int] = Field(default=None, ge=1)
    top_logprobs: Optional[int] = None

    def requested_max_tokens(self) -> Optional[int]:
        """``max_completion_tokens`` (the current name) or ``max_tokens`` (the deprecated one)."""
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


class CompletionRequest(SamplingFields):
    """Body of ``POST /v1/completions``; ``prompt`` is a string or a list of token ids (one prompt)."""

    prompt: Union[str, List[int]]
    echo: bool = False
    suffix: Optional[str] = None
    best_of: Optional[int] = None

    def requested_max_tokens(self) -> Optional[int]:
        return self.max_tokens


def unsupported_field(request: SamplingFields) -> Optional[str]:
    """Name of the first field set to a value this server cannot honour, or ``None``."""
    refused = {
        "logprobs": request.logprobs not in (None, False, 0),
        "presence_penalty": request.presence_penalty != 0.0,
        "frequency_penalty": request.frequency_penalty != 0.0,
        "logit_bias": bool(request.logit_bias),
    }
    if isinstance(request, CompletionRequest):
        refused.update(echo=request.echo, suffix=bool(request.suffix), best_of=request.best_of not in (None, 1))
    if isinstance(request, ChatCompletionRequest):
        refused["top_logprobs"] = request.top_logprobs not in (None, 0)
    return next((name for name, is_refused in refused.items() if is_refused), None)


# ---------------------------------------------------------------------------------------------
# responses


def new_id(prefix: str) -> str:
    """A fresh request id such as ``chatcmpl-3f2a...``."""
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


class PromptTokensDetails(BaseModel):
    """``cached_tokens``: prompt tokens taken from the prefix cache instead of being prefilled."""

    cached_tokens: int = 0


class Usage(BaseModel):
    """Token counts; ``prompt_tokens`` and ``prompt_tokens_details.cached_tokens`` exclude the memory
    tokens the tokenizer prepends."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails = Field(default_factory=PromptTokensDetails)


class ErrorBody(BaseModel):
    message: str
    type: str
    param: Optional[str] = None
    code: Optional[str] = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=now)
    owned_by: str = "trtllm-flash"
    max_model_len: int


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: List[ModelCard]


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Optional[str]
    logprobs: None = None


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=now)
    model: str
    choices: List[ChatChoice]
    usage: Usage


class ChatDelta(BaseModel):
    role: Optional[Literal["assistant"]] = None
    content: Optional[str] = None


class ChatChunkChoice(BaseModel):
    index: int = 0
    delta: ChatDelta
    finish_reason: Optional[str] = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int = Field(default_factory=now)
    model: str
    choices: List[ChatChunkChoice]
    usage: Optional[Usage] = None


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    finish_reason: Optional[str] = None
    logprobs: None = None


class CompletionResponse(BaseModel):
    """Both the whole answer and each streamed chunk of ``/v1/completions`` (same object type)."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=now)
    model: str
    choices: List[CompletionChoice]
    usage: Optional[Usage] = None
