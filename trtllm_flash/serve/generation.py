"""One generation request from validated body to HTTP response, streamed (SSE) or whole.

The flow: check the sampling fields and lengths (400 naming the field), submit to the engine loop
(429 when over the bound, 400 when the engine refuses the input), then either stream text pieces as
server-sent events or collect the whole answer. Whichever way the exchange ends — finished, stop
string, client gone, error — the request is released, which aborts it in the engine if it is still
running, so its KV pages and state slot are freed before the next engine step.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, List, Optional, Union

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from .detokenizer import IncrementalDetokenizer
from .engine_loop import EngineFailed, EngineLoop, Overloaded, RequestStream, ShuttingDown
from .errors import APIError, bad_request, internal_error, overloaded, unavailable
from .protocol import PromptTokensDetails, SamplingFields, Usage, new_id, unsupported_field
from .responses import ChatResponses, CompletionResponses

Responses = Union[ChatResponses, CompletionResponses]


@dataclass
class ServedModel:
    """What the endpoints need to know about the model being served.

    Attributes:
        name: the model name clients must send in ``model``.
        tokenizer: encodes prompts (prepending the memory tokens) and decodes answers.
        max_seq_len: prompt (memory tokens included) + generated tokens must fit in this.
        num_memory_tokens: memory tokens the tokenizer prepends; excluded from usage counts.
        make_sampling_params: the runtime's ``SamplingParams`` constructor (raises ValueError).
        max_chars_per_token: characters the longest token decodes to: a prompt of more than
            ``max_seq_len * max_chars_per_token`` characters cannot fit and is refused untokenized
            (None: every prompt is tokenized first; ``trtllm-flash serve`` always sets it).
        max_request_tokens: prompt + answer tokens one request can hold: ``max_seq_len`` or less when
            the KV pool is smaller (None: ``max_seq_len``). A request without ``max_tokens`` may
            generate up to it.
    """

    name: str
    tokenizer: Any
    max_seq_len: int
    num_memory_tokens: int
    make_sampling_params: Callable[..., Any]
    max_chars_per_token: Optional[int] = None
    max_request_tokens: Optional[int] = None

    @property
    def max_prompt_chars(self) -> Optional[int]:
        return None if self.max_chars_per_token is None else self.max_seq_len * self.max_chars_per_token

    @property
    def request_token_limit(self) -> int:
        return min(self.max_seq_len, self.max_request_tokens or self.max_seq_len)


class GenerationService:
    """Runs generation requests for both endpoints over one :class:`EngineLoop`."""

    def __init__(self, model: ServedModel, engine_loop: EngineLoop):
        self.model = model
        self.engine_loop = engine_loop

    async def respond(self, http_request: Request, body: SamplingFields, prompt_token_ids: List[int],
                      responses_type: type) -> Any:
        """Generate the answer to ``body`` whose prompt encodes to ``prompt_token_ids``."""
        sampling_params = self._sampling_params(body, len(prompt_token_ids))
        responses: Responses = responses_type(new_id(responses_type.id_prefix), self.model.name)
        try:
            stream = await self.engine_loop.submit(responses.request_id, prompt_token_ids, sampling_params)
        except Overloaded as exc:
            raise overloaded(f"The server is overloaded ({exc}); retry later.") from exc
        except ValueError as exc:
            raise bad_request(f"The request was refused by the engine: {exc}") from exc
        except ShuttingDown as exc:
            raise unavailable(f"The server is shutting down ({exc}); retry later.", "shutting_down") from exc
        except EngineFailed as exc:
            raise unavailable(f"The engine is unavailable: {exc}", "engine_unavailable") from exc
        answer = _Answer(stream, IncrementalDetokenizer(self.model.tokenizer, body.stop_strings()),
                         len(prompt_token_ids) - self.model.num_memory_tokens, self.model.num_memory_tokens)
        if body.stream:
            events = self._events(answer, responses, body.include_usage())
            return _EngineStreamResponse(events, on_close=lambda: self.engine_loop.release(stream))
        try:
            return await _unless_disconnected(http_request, self._whole(answer, responses))
        finally:
            self.engine_loop.release(stream)

    def _sampling_params(self, body: SamplingFields, prompt_len: int) -> Any:
        unsupported = unsupported_field(body)
        if unsupported is not None:
            raise bad_request(f"'{unsupported}' is not supported by this server; leave it unset.", param=unsupported)
        if body.n != 1:
            raise bad_request(f"n={body.n} is not supported; this server returns one choice per request, "
                              "send n=1 (or several requests).", param="n")
        limit = self.model.request_token_limit
        held_by = (f"max_seq_len is {limit}" if limit == self.model.max_seq_len else
                   f"the KV cache holds {limit} tokens per request (max_seq_len {self.model.max_seq_len})")
        memory = self.model.num_memory_tokens
        if prompt_len >= limit:
            raise bad_request(
                f"The prompt is {prompt_len - memory} tokens long (+ {memory} memory tokens) but {held_by}: "
                f"shorten the prompt to at most {limit - memory - 1} tokens.",
                param="messages" if hasattr(body, "messages") else "prompt", code="context_length_exceeded")
        room = limit - prompt_len
        max_tokens = body.requested_max_tokens()
        if max_tokens is not None and max_tokens > room:
            named = "max_completion_tokens" if getattr(body, "max_completion_tokens", None) is not None else "max_tokens"
            raise bad_request(
                f"The prompt ({prompt_len - memory} tokens + {memory} memory tokens) plus {named}={max_tokens} "
                f"does not fit: {held_by}; set {named} to at most {room} or shorten the prompt.",
                param=named, code="context_length_exceeded")
        try:
            return self.model.make_sampling_params(
                max_tokens=max_tokens if max_tokens is not None else room, temperature=body.temperature,
                top_k=body.top_k, top_p=body.top_p, seed=body.seed, stop=body.stop_strings(),
                ignore_eos=body.ignore_eos)
        except ValueError as exc:
            param = next((name for name in ("temperature", "top_k", "top_p", "seed", "stop", "max_tokens")
                          if str(exc).startswith(name)), None)
            raise bad_request(f"Invalid sampling parameters: {exc}", param=param) from exc

    async def _events(self, answer: "_Answer", responses: Responses, include_usage: bool) -> AsyncIterator[str]:
        """Server-sent events: opening chunks, one chunk per text piece, the finish, usage, [DONE]."""
        for chunk in responses.opening_chunks():
            yield _sse(chunk)
        try:
            async for text in answer.pieces():
                yield _sse(responses.text_chunk(text, None))
        except APIError as exc:
            yield _sse(exc.body)
            yield "data: [DONE]\n\n"
            return
        yield _sse(responses.text_chunk("", answer.finish_reason))
        if include_usage:
            yield _sse(responses.usage_chunk(answer.usage()))
        yield "data: [DONE]\n\n"

    async def _whole(self, answer: "_Answer", responses: Responses) -> JSONResponse:
        pieces = [text async for text in answer.pieces()]
        body = responses.full_response("".join(pieces), answer.finish_reason, answer.usage())
        return JSONResponse(body.model_dump())


class _Answer:
    """The text of one request as it is generated, its finish reason and its usage counts."""

    def __init__(self, stream: RequestStream, detokenizer: IncrementalDetokenizer, prompt_tokens: int, num_memory_tokens: int):
        self._stream = stream
        self._detokenizer = detokenizer
        self._prompt_tokens = prompt_tokens
        self._num_memory_tokens = num_memory_tokens
        self._cached_tokens = 0
        self.finish_reason: Optional[str] = None

    async def pieces(self) -> AsyncIterator[str]:
        """Text pieces until the answer is complete; raises :class:`APIError` if the engine failed it."""
        try:
            async for update in self._stream:
                self._cached_tokens = max(0, update.num_cached_tokens - self._num_memory_tokens)
                text = self._detokenizer.add(update.new_token_ids, update.finished)
                if text:
                    yield text
                if self._detokenizer.stopped:
                    self.finish_reason = "stop"
                    return
                if update.finished:
                    if update.finish_reason not in ("stop", "length"):
                        raise internal_error(f"The engine ended the request ({update.finish_reason}).")
                    self.finish_reason = update.finish_reason
        except ShuttingDown as exc:
            raise unavailable(f"The request was cut short: {exc}; retry later.", "shutting_down") from exc
        except EngineFailed as exc:
            raise internal_error(f"The engine failed this request: {exc}") from exc

    def usage(self) -> Usage:
        completion = self._detokenizer.num_tokens
        return Usage(prompt_tokens=self._prompt_tokens, completion_tokens=completion,
                     total_tokens=self._prompt_tokens + completion,
                     prompt_tokens_details=PromptTokensDetails(cached_tokens=self._cached_tokens))


class _EngineStreamResponse(StreamingResponse):
    """An SSE response that calls ``on_close`` however it ends (done, client disconnect, error)."""

    def __init__(self, events: AsyncIterator[str], on_close: Callable[[], None]):
        super().__init__(events, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._on_close = on_close

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()


async def _unless_disconnected(http_request: Request, work: Any) -> Any:
    """Await ``work``; if the client disconnects first, cancel it (nobody reads the 499 answer)."""
    work_task = asyncio.ensure_future(work)
    disconnect_task = asyncio.ensure_future(_wait_for_disconnect(http_request))
    try:
        await asyncio.wait({work_task, disconnect_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        disconnect_task.cancel()
        if not work_task.done():
            work_task.cancel()
    if not work_task.done() or work_task.cancelled():
        return JSONResponse({"error": {"message": "client disconnected", "type": "client_closed_request",
                                       "param": None, "code": None}}, status_code=499)
    return work_task.result()


async def _wait_for_disconnect(http_request: Request) -> None:
    while (await http_request.receive())["type"] != "http.disconnect":
        pass


def _sse(body: BaseModel) -> str:
    return f"data: {json.dumps(body.model_dump(), separators=(',', ':'))}\n\n"
