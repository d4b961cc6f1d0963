"""The FastAPI application: routes of the OpenAI-compatible API over one :class:`GenerationService`.

``GET /health``, ``GET /v1/models``, ``POST /v1/completions``, ``POST /v1/chat/completions``, and
``GET /stats`` (engine and cache statistics: in-flight requests, KV pages and state slots in use).
The engine loop starts with the application and stops (aborting what still runs) with it.

Prompts are measured before they are tokenized (a text longer than ``max_seq_len`` times the longest
token cannot fit: 400 at once) and tokenized on a worker thread, so a long prompt never holds up the
event loop and the other clients.
"""
from __future__ import annotations

import asyncio
import contextlib
from typing import Any, AsyncIterator, Dict

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from .engine_loop import EngineLoop
from .errors import ERROR_STATUSES, bad_request, install_error_handlers, unavailable
from .generation import GenerationService, ServedModel
from .middleware import RequestGuard
from .prompts import encode_chat, encode_completion_prompt
from .protocol import ChatCompletionRequest, CompletionRequest, ErrorResponse, ModelCard, ModelList
from .responses import ChatResponses, CompletionResponses

#: the request body bound of ``trtllm-flash serve`` (``--max_body_bytes``)
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024


def build_app(model: ServedModel, engine_loop: EngineLoop, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    """The ASGI app serving ``model`` through ``engine_loop`` (started and stopped by its lifespan).

    ``app.state.begin_shutdown(grace_s)`` is what the server calls when it starts shutting down: new
    requests get 503 at once, and requests still running ``grace_s - 1`` seconds later end with a 503
    (a whole answer) or an error event (a stream) before the server closes their connections.
    """
    service = GenerationService(model, engine_loop)
    shutting_down = False

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        engine_loop.start()
        try:
            yield
        finally:
            engine_loop.stop()

    app = FastAPI(title="trtllm-flash OpenAI-compatible server", lifespan=lifespan)
    install_error_handlers(app)
    app.add_middleware(RequestGuard, max_body_bytes=max_body_bytes, is_shutting_down=lambda: shutting_down)
    errors: Dict[int, Dict[str, Any]] = {status: {"model": ErrorResponse, "description": why}
                                         for status, why in ERROR_STATUSES.items()}

    def begin_shutdown(grace_s: float) -> None:
        nonlocal shutting_down
        shutting_down = True
        asyncio.get_running_loop().call_later(max(grace_s - 1.0, 0.0), engine_loop.fail_all,
                                              "the server is shutting down")

    app.state.begin_shutdown = begin_shutdown

    def check_model(name: str) -> None:
        if name != model.name:
            raise bad_request(f"The model '{name}' does not exist on this server; send model='{model.name}'.",
                              param="model", code="model_not_found")

    def check_prompt_chars(body: Any, param: str) -> None:
        chars = body.prompt_chars()
        if model.max_prompt_chars is not None and chars > model.max_prompt_chars:
            raise bad_request(
                f"The prompt has {chars} characters, more than max_seq_len ({model.max_seq_len}) tokens can hold "
                f"(at most {model.max_prompt_chars} characters); shorten it.", param=param,
                code="context_length_exceeded")

    @app.get("/health", responses={503: errors[503]})
    async def health() -> JSONResponse:
        if not engine_loop.is_alive:
            raise unavailable("The engine loop is not running.", "engine_dead")
        return JSONResponse({"status": "ok"})

    @app.get("/stats")
    async def stats() -> JSONResponse:
        engine_stats = await engine_loop.stats()
        return JSONResponse({"requests_in_flight": engine_loop.num_in_flight,
                             "max_requests_in_flight": engine_loop.max_in_flight, **engine_stats})

    @app.get("/v1/models")
    async def models() -> ModelList:
        return ModelList(data=[ModelCard(id=model.name, max_model_len=model.max_seq_len)])

    @app.post("/v1/completions", responses=errors)
    async def completions(body: CompletionRequest, http_request: Request) -> Any:
        check_model(body.model)
        check_prompt_chars(body, "prompt")
        prompt_token_ids = await run_in_threadpool(encode_completion_prompt, model.tokenizer, body.prompt)
        return await service.respond(http_request, body, prompt_token_ids, CompletionResponses)

    @app.post("/v1/chat/completions", responses=errors)
    async def chat_completions(body: ChatCompletionRequest, http_request: Request) -> Any:
        check_model(body.model)
        check_prompt_chars(body, "messages")
        prompt_token_ids = await run_in_threadpool(encode_chat, model.tokenizer, body.messages)
        return await service.respond(http_request, body, prompt_token_ids, ChatResponses)

    app.openapi = lambda: _without_422(app)
    return app


def _without_422(app: FastAPI) -> Dict[str, Any]:
    """FastAPI's OpenAPI document less the 422 it adds to every route with a body: this server answers
    validation errors with 400 (see :mod:`trtllm_flash.serve.errors`)."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
    return app.openapi_schema
