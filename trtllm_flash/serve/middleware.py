"""The ASGI guard in front of every route: body size, shutdown, and unexpected exceptions.

* A ``POST`` body larger than ``max_body_bytes`` is answered **413** before it is parsed (at once when
  ``Content-Length`` says so, else as soon as the bytes read pass the bound), so a huge body costs
  neither memory nor parsing time.
* Once the server is shutting down, a new request is answered **503** (JSON).
* An exception no handler turned into an answer is logged once and answered with a JSON **500**; the
  connection stays usable (Starlette's own handler re-raises, which logs the traceback twice and
  makes the server drop the keep-alive connection).
"""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Dict

from .errors import APIError, internal_error, too_large, unavailable

logger = logging.getLogger(__name__)

Message = Dict[str, Any]


class RequestGuard:
    """ASGI middleware; ``is_shutting_down()`` is read for every request."""

    def __init__(self, app: Any, max_body_bytes: int, is_shutting_down: Callable[[], bool]):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.is_shutting_down = is_shutting_down

    async def __call__(self, scope: Message, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.is_shutting_down():
            await _answer(send, unavailable("The server is shutting down; retry on another instance.", "shutting_down"))
            return
        if scope["method"] == "POST":
            body = await self._read_body(scope, receive)
            if body is None:
                await _answer(send, too_large(f"The request body is larger than {self.max_body_bytes} bytes; "
                                              "send a shorter prompt."))
                return
            receive = _replay(body, receive)
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            logger.exception("unhandled error while serving %s %s", scope["method"], scope["path"])
            if not started:
                await _answer(send, internal_error(f"Internal server error: {type(exc).__name__}: {exc}"))

    async def _read_body(self, scope: Message, receive: Callable[[], Awaitable[Message]]) -> Any:
        """The whole body, or None once it is known to exceed the bound."""
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":   # the client left: let the app see it
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Callable[[], Awaitable[Message]]) -> Callable[[], Awaitable[Message]]:
    """A ``receive`` that yields ``body`` once, then whatever the client sends next (its disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


async def _answer(send: Callable[[Message], Awaitable[None]], error: APIError) -> None:
    response = error.response()
    await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})
