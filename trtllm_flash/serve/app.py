"""The FastAPI application: routes of the OpenAI-compatible API over one :class:`GenerationService`.

``GET /health``, ``GET /v1/models``, ``POST /v1/completions``, ``POST /v1/chat/completions``, and
``GET /stats`` (engine and cache statistics: in-flight requests, KV pages and state slots in use).
The engine loop starts with the application and stops (aborting what still runs) with it.
"""
from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .engine_loop import EngineLoop
from .errors import APIError, bad_request, install_error_handlers
from .generation import GenerationService, ServedModel
from .prompts import encode_chat, encode_completion_prompt
from .protocol import ChatCompletionRequest, CompletionRequest, ModelCard, ModelList
from .responses import ChatResponses, CompletionResponses


def build_app(model: ServedModel, engine_loop: EngineLoop) -> FastAPI:
    """The ASGI app serving ``model`` through ``engine_loop`` (started and stopped by its lifespan)."""
    service = GenerationService(model, engine_loop)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        engine_loop.start()
        try:
            yield
        finally:
            engine_loop.stop()

    app = FastAPI(title="trtllm-flash OpenAI-compatible server", lifespan=lifespan)
    install_error_handlers(app)

    def check_model(name: str) -> None:
        if name != model.name:
            raise bad_request(f"The model '{name}' does not exist on this server; send model='{model.name}'.",
                              param="model", code="model_not_found")

    @app.get("/health")
    async def health() -> JSONResponse:
        if not engine_loop.is_alive:
            raise APIError(503, "The engine loop is not running.", "server_error", code="engine_dead")
        return JSONResponse({"status": "ok"})

    @app.get("/stats")
    async def stats() -> JSONResponse:
        engine_stats = await engine_loop.stats()
        return JSONResponse({"requests_in_flight": engine_loop.num_in_flight,
                             "max_requests_in_flight": engine_loop.max_in_flight, **engine_stats})

    @app.get("/v1/models")
    async def models() -> ModelList:
        return ModelList(data=[ModelCard(id=model.name, max_model_len=model.max_seq_len)])

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, http_request: Request) -> Any:
        check_model(body.model)
        prompt_token_ids = encode_completion_prompt(model.tokenizer, body.prompt)
        return await service.respond(http_request, body, prompt_token_ids, CompletionResponses)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, http_request: Request) -> Any:
        check_model(body.model)
        prompt_token_ids = encode_chat(model.tokenizer, body.messages)
        return await service.respond(http_request, body, prompt_token_ids, ChatResponses)

    return app
