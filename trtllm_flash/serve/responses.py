"""Builds the response bodies of the two generation endpoints from text pieces.

:class:`ChatResponses` and :class:`CompletionResponses` share one interface, so the request flow in
:mod:`trtllm_flash.serve.generation` does not care which endpoint it serves.
"""
from __future__ import annotations

from typing import List, Optional

from pydantic import BaseModel

from .protocol import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionResponse,
    ChatDelta,
    CompletionChoice,
    CompletionResponse,
    Usage,
    now,
)


class ChatResponses:
    """Bodies of ``/v1/chat/completions``: ``chat.completion`` and ``chat.completion.chunk``."""

    id_prefix = "chatcmpl"

    def __init__(self, request_id: str, model: str):
        self.request_id = request_id
        self.model = model
        self.created = now()

    def opening_chunks(self) -> List[BaseModel]:
        """The first chunk announces the assistant role, with empty content."""
        return [self._chunk(ChatDelta(role="assistant", content=""), None)]

    def text_chunk(self, text: str, finish_reason: Optional[str]) -> BaseModel:
        return self._chunk(ChatDelta(content=text) if text else ChatDelta(), finish_reason)

    def usage_chunk(self, usage: Usage) -> BaseModel:
        return ChatCompletionChunk(id=self.request_id, created=self.created, model=self.model, choices=[], usage=usage)

    def full_response(self, text: str, finish_reason: str, usage: Usage) -> BaseModel:
        choice = ChatChoice(message=AssistantMessage(content=text), finish_reason=finish_reason)
        return ChatCompletionResponse(id=self.request_id, created=self.created, model=self.model,
                                      choices=[choice], usage=usage)

    def _chunk(self, delta: ChatDelta, finish_reason: Optional[str]) -> BaseModel:
        choice = ChatChunkChoice(delta=delta, finish_reason=finish_reason)
        return ChatCompletionChunk(id=self.request_id, created=self.created, model=self.model, choices=[choice])


class CompletionResponses:
    """Bodies of ``/v1/completions``: ``text_completion`` objects, streamed or whole."""

    id_prefix = "cmpl"

    def __init__(self, request_id: str, model: str):
        self.request_id = request_id
        self.model = model
        self.created = now()

    def opening_chunks(self) -> List[BaseModel]:
        return []

    def text_chunk(self, text: str, finish_reason: Optional[str]) -> BaseModel:
        return self._body([CompletionChoice(text=text, finish_reason=finish_reason)], None)

    def usage_chunk(self, usage: Usage) -> BaseModel:
        return self._body([], usage)

    def full_response(self, text: str, finish_reason: str, usage: Usage) -> BaseModel:
        return self._body([CompletionChoice(text=text, finish_reason=finish_reason)], usage)

    def _body(self, choices: List[CompletionChoice], usage: Optional[Usage]) -> BaseModel:
        return CompletionResponse(id=self.request_id, created=self.created, model=self.model,
                                  choices=choices, usage=usage)
