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

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from ..sampling_params import MAX_SEED, MAX_TOP_K

#: at most this many stop strings per request, each at most MAX_STOP_CHARS long (the engine searches the
#: generated text for every one of them after every token)
MAX_STOP_STRINGS = 16
MAX_STOP_CHARS = 512

#: request bodies are strict: no bool for a number, no string for a bool, no number for a string
STRICT = ConfigDict(extra="ignore", strict=True)


def invalid(message: str, subpath: str = "") -> PydanticCustomError:
    """A validation error whose ``param`` is the field's path plus ``subpath`` (e.g. ``"[0].text"``)."""
    return PydanticCustomError("invalid_value", message, {"subpath": subpath})


def check_text(value: Any, what: str, subpath: str = "") -> str:
    """``value`` if it is a string of valid Unicode (no lone surrogate, which no tokenizer can encode)."""
    if not isinstance(value, str):
        raise invalid(f"{what} must be a string, got {_json_type(value)}", subpath)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise invalid(f"{what} is not valid Unicode (a lone surrogate at character {exc.start}); "
                      "send UTF-8 text", subpath) from None
    return value


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
             dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


class StreamOptions(BaseModel):
    """``stream_options``: ``include_usage`` adds a final chunk holding the usage counts."""

    model_config = STRICT

    include_usage: bool = False


class SamplingFields(BaseModel):
    """The sampling fields shared by ``/v1/completions`` and ``/v1/chat/completions``."""

    model_config = STRICT

    model: str
    max_tokens: Optional[int] = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0,
                               description="below 1e-5 (0 included) the answer is greedy (argmax)")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int = Field(default=0, ge=0, le=MAX_TOP_K, description="extension: 0 keeps every token")
    seed: Optional[int] = Field(default=None, ge=0, le=MAX_SEED)
    stop: Any = Field(default=None, description=f"a string or up to {MAX_STOP_STRINGS} strings of at most "
                                                f"{MAX_STOP_CHARS} characters")
    n: int = Field(default=1, ge=1)
    stream: bool = False
    stream_options: Optional[StreamOptions] = None
    ignore_eos: bool = Field(default=False, description="extension: keep generating past EOS")
    user: Optional[str] = None

    # refused unless left at their defaults (see unsupported_field)
    logprobs: Any = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: Optional[Dict[str, float]] = None

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: Any) -> Optional[List[str]]:
        if value is None:
            return None
        stops = [value] if isinstance(value, str) else value
        if not isinstance(stops, list):
            raise invalid(f"must be a string or an array of strings, got {_json_type(value)}")
        if len(stops) > MAX_STOP_STRINGS:
            raise invalid(f"at most {MAX_STOP_STRINGS} stop strings are accepted, got {len(stops)}")
        for index, stop in enumerate(stops):
            where = "" if isinstance(value, str) else f"[{index}]"
            check_text(stop, "a stop string", where)
            if not 1 <= len(stop) <= MAX_STOP_CHARS:
                raise invalid(f"a stop string must have 1 to {MAX_STOP_CHARS} characters, got {len(stop)}", where)
        return stops

    @field_validator("logprobs")
    @classmethod
    def _logprobs(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, (bool, int)):
            raise invalid(f"must be a boolean, an integer or null, got {_json_type(value)}")
        return value

    def stop_strings(self) -> List[str]:
        """``stop`` as a list (the API takes one string or a list)."""
        return list(self.stop or [])

    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


class ChatMessage(BaseModel):
    """One chat message; ``content`` is a string or a list of ``{"type": "text", "text": ...}`` parts."""

    model_config = STRICT

    role: Literal["system", "developer", "user", "assistant"]
    content: Any = Field(description="a string or an array of {\"type\": \"text\", \"text\": string} parts")

    @field_validator("content")
    @classmethod
    def _content(cls, value: Any) -> Union[str, List[Dict[str, Any]]]:
        if isinstance(value, str) or not isinstance(value, list):
            return check_text(value, "content")
        for index, part in enumerate(value):
            if not isinstance(part, dict):
                raise invalid(f"a content part must be an object, got {_json_type(part)}", f"[{index}]")
            if part.get("type") != "text":
                raise invalid(f"this model reads only 'text' content parts, got type {part.get('type')!r}",
                              f"[{index}].type")
            check_text(part.get("text"), "a text part's 'text'", f"[{index}].text")
        return value

    def text(self) -> str:
        """The message's text (its text parts joined)."""
        if isinstance(self.content, str):
            return self.content
        return "".join(part["text"] for part in self.content)


class ChatCompletionRequest(SamplingFields):
    """Body of ``POST /v1/chat/completions``."""

    messages: List[ChatMessage] = Field(min_length=1)
    max_completion_tokens: Optional[int] = Field(default=None, ge=1)
    top_logprobs: Optional[int] = None

    def requested_max_tokens(self) -> Optional[int]:
        """``max_completion_tokens`` (the current name) or ``max_tokens`` (the deprecated one)."""
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    def prompt_chars(self) -> int:
        return sum(len(message.text()) for message in self.messages)


class CompletionRequest(SamplingFields):
    """Body of ``POST /v1/completions``; ``prompt`` is a string or a list of token ids (one prompt)."""

    prompt: Any = Field(description="a string or an array of token ids")
    echo: bool = False
    suffix: Optional[str] = None
    best_of: Optional[int] = None

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: Any) -> Union[str, List[int]]:
        if not isinstance(value, list):
            return check_text(value, "prompt")
        for index, token in enumerate(value):
            if isinstance(token, bool) or not isinstance(token, int):
                raise invalid(f"a token id must be an integer, got {_json_type(token)} (this server takes one "
                              "prompt per request)", f"[{index}]")
        return value

    def requested_max_tokens(self) -> Optional[int]:
        return self.max_tokens

    def prompt_chars(self) -> int:
        return len(self.prompt) if isinstance(self.prompt, str) else 0


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
