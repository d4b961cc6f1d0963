"""OpenAI-style errors: ``{"error": {"message", "type", "param", "code"}}`` with the right HTTP status.

Handlers raise :class:`APIError`; :func:`install_error_handlers` turns it, FastAPI's validation
errors (malformed JSON, wrong field types, out-of-range values) and HTTP errors (404, 405 with its
``Allow`` header) into that body, so no endpoint ever answers with FastAPI's own 422. Unexpected
exceptions become a JSON 500 in :mod:`trtllm_flash.serve.middleware`. ``param`` names the field as
OpenAI does: ``messages[0].content[1].text``.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .protocol import ErrorBody, ErrorResponse

class APIError(Exception):
    """An error to send to the client as OpenAI-style JSON."""

    def __init__(self, status: int, message: str, type: str, param: Optional[str] = None,
                 code: Optional[str] = None):
        super().__init__(message)
        self.status = status
        self.body = ErrorResponse(error=ErrorBody(message=message, type=type, param=param, code=code))

    def response(self) -> JSONResponse:
        return JSONResponse(self.body.model_dump(), status_code=self.status)


def bad_request(message: str, param: Optional[str] = None, code: Optional[str] = None) -> APIError:
    """400 ``invalid_request_error``: the message says what the client must change."""
    return APIError(400, message, "invalid_request_error", param, code)


def overloaded(message: str) -> APIError:
    """429: the server's waiting queue is full; the client should retry later."""
    return APIError(429, message, "rate_limit_error", None, "server_overloaded")


def internal_error(message: str) -> APIError:
    return APIError(500, message, "server_error", None, "internal_error")


def unavailable(message: str, code: str) -> APIError:
    """503: the engine is not running, or the server is shutting down; retry elsewhere or later."""
    return APIError(503, message, "server_error", None, code)


def too_large(message: str) -> APIError:
    return APIError(413, message, "invalid_request_error", None, "request_too_large")


#: every status the server sends besides 200, for the OpenAPI document
ERROR_STATUSES = {400: "invalid request (the message says what to change; `param` names the field)",
                  413: "request body too large", 429: "the server is full; retry later",
                  500: "the engine failed this request", 503: "the engine is not running or the server is shutting down"}


def openai_param(location: Sequence[Any]) -> Optional[str]:
    """Pydantic's error location (``("body", "messages", 0, "content")``) as OpenAI's ``messages[0].content``."""
    param = ""
    for part in location:
        if part == "body" and not param:
            continue
        param += f"[{part}]" if isinstance(part, int) else (f".{part}" if param else str(part))
    return param or None


def _describe_validation_error(exc: RequestValidationError) -> APIError:
    """The first pydantic error as a 400 naming the offending field."""
    first = exc.errors()[0]
    if first.get("type") == "json_invalid":
        return bad_request(f"The request body is not valid JSON ({first.get('msg')}); send a JSON object.",
                           code="invalid_json")
    param = openai_param(first.get("loc", ()))
    if param is None:
        return bad_request(f"Invalid request body: {first.get('msg')}; send a JSON object.", code="invalid_body")
    param += (first.get("ctx") or {}).get("subpath", "")
    return bad_request(f"Invalid value for '{param}': {first.get('msg')}.", param=param, code="invalid_value")


def install_error_handlers(app: FastAPI) -> None:
    """Route every error an endpoint can produce through the OpenAI error body."""

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _describe_validation_error(exc).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        response = APIError(exc.status_code, str(exc.detail), kind).response()
        response.headers.update(exc.headers or {})   # 405's Allow
        return response
