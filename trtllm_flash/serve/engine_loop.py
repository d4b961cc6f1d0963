"""The async face of the (synchronous, not thread-safe) engine.

One thread, the *engine thread*, makes every call into the engine. The asyncio side talks to it
through a FIFO of commands (add, abort, stats, stop); while the engine has unfinished requests the
thread alternates "run pending commands" and ``engine.step()``, and when it is idle it blocks on the
command queue (no polling). Each step's deltas are handed to the event loop in one
``call_soon_threadsafe`` and land in per-request :class:`RequestStream` queues.

Because commands run in order, an abort sent after an add always finds the request: a client that
disconnects while its request is being added still frees its cache. Aborts run before the next
step, so the cache of a cancelled request is free as soon as the step in progress ends.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

logger = logging.getLogger(__name__)


class Overloaded(Exception):
    """More requests are in flight than the server accepts (running + waiting bound)."""


class EngineFailed(Exception):
    """The engine failed this request (a per-request error or an exception in ``step``)."""


class ShuttingDown(EngineFailed):
    """The server is shutting down: the request was cut short (or not accepted)."""


@dataclass
class RequestUpdate:
    """What a request stream yields: new tokens, and when finished, why; ``num_cached_tokens``: prompt
    tokens (memory tokens included) the engine took from its prefix cache."""

    new_token_ids: List[int]
    finished: bool
    finish_reason: Optional[str]
    num_cached_tokens: int = 0


@dataclass
class _Command:
    """A unit of work for the engine thread; ``run`` executes there, its result goes to ``future``."""

    run: Callable[[], Any]
    future: Optional[asyncio.Future] = None


class RequestStream:
    """The async iterator of one request's :class:`RequestUpdate`; raises :class:`EngineFailed`."""

    def __init__(self, request_id: str):
        self.request_id = request_id
        self._queue: asyncio.Queue = asyncio.Queue()
        self.finished = False
        self.released = False

    def _put(self, item: Any) -> None:
        self._queue.put_nowait(item)

    def __aiter__(self) -> "RequestStream":
        return self

    async def __anext__(self) -> RequestUpdate:
        if self.finished:
            raise StopAsyncIteration
        item = await self._queue.get()
        if isinstance(item, EngineFailed):
            self.finished = True
            raise item
        self.finished = item.finished
        return item


class EngineLoop:
    """Runs ``engine`` on its own thread and serves it to coroutines.

    Args:
        engine: object with ``add_request``, ``abort_request``, ``step``, ``has_unfinished_requests``
            (see :mod:`trtllm_flash.runtime.engine`).
        max_running: requests the engine runs at once (its ``max_batch_size``).
        max_waiting: requests accepted beyond ``max_running``; one more is refused with
            :class:`Overloaded` (the server answers 429) instead of queueing without bound.
        stats: called on the engine thread, returns a JSON-able dict of engine/cache statistics.
    """

    def __init__(self, engine: Any, max_running: int, max_waiting: int,
                 stats: Callable[[Any], Dict[str, Any]]):
        self._engine = engine
        self.max_in_flight = max_running + max_waiting
        self._stats = stats
        self._commands: "queue.SimpleQueue[Optional[_Command]]" = queue.SimpleQueue()
        self._live: Dict[str, RequestStream] = {}  # engine thread only
        self._num_aborted = 0                      # engine thread only: live requests aborted
        self._in_flight = 0                        # event loop only
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._closed = False                       # set by the engine thread when it ends
        self._closing: Optional[str] = None        # event loop only: why new requests are refused

    # -- lifecycle (event loop) ----------------------------------------------------------------

    def start(self) -> None:
        """Start the engine thread; call from the event loop that will consume the streams."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="trtllm-flash-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Abort every live request and end the engine thread."""
        if self._thread is None:
            return
        self._commands.put(None)
        self._thread.join()
        self._thread = None

    @property
    def is_alive(self) -> bool:
        return self._thread is not None and not self._closed

    @property
    def num_in_flight(self) -> int:
        return self._in_flight

    # -- requests (event loop) -----------------------------------------------------------------

    async def submit(self, request_id: str, prompt_token_ids: Sequence[int], sampling_params: Any) -> RequestStream:
        """Add a request; raises :class:`Overloaded`, or the engine's ``ValueError`` for invalid input.

        The returned stream must be consumed to the end or handed to :meth:`release`.
        """
        if self._closing is not None:
            raise ShuttingDown(self._closing)
        if not self.is_alive:
            raise EngineFailed("the engine loop is not running")
        if self._in_flight >= self.max_in_flight:
            raise Overloaded(f"{self._in_flight} requests are in flight, the server's bound is {self.max_in_flight}")
        stream = RequestStream(request_id)
        self._in_flight += 1
        try:
            await self._call(lambda: self._add(stream, list(prompt_token_ids), sampling_params))
        except BaseException:
            self._in_flight -= 1
            self.abort(request_id)   # no-op unless the add ran before the caller was cancelled
            raise
        return stream

    def release(self, stream: RequestStream) -> None:
        """Done with ``stream`` (idempotent): abort the request if it has not finished (frees its cache)."""
        if stream.released:
            return
        stream.released = True
        self._in_flight -= 1
        if not stream.finished:
            stream.finished = True
            self.abort(stream.request_id)

    def fail_all(self, reason: str) -> None:
        """End every live request with :class:`ShuttingDown` (``reason``) and refuse new ones."""
        self._closing = reason
        self._commands.put(_Command(lambda: [self._fail(request_id, ShuttingDown(reason)) for request_id in list(self._live)]))

    def abort(self, request_id: str) -> None:
        """Abort ``request_id`` before the engine's next step; unknown or finished ids are ignored."""
        self._commands.put(_Command(lambda: self._abort(request_id)))

    async def stats(self) -> Dict[str, Any]:
        """Engine and cache statistics (read on the engine thread between steps) and abort count."""
        return await self._call(lambda: {"requests_aborted": self._num_aborted, **self._stats(self._engine)})

    async def _call(self, run: Callable[[], Any]) -> Any:
        future = self._loop.create_future()
        self._commands.put(_Command(run, future))
        return await future

    # -- engine thread -------------------------------------------------------------------------

    def _run(self) -> None:
        reason = "the server is shutting down"
        try:
            while self._run_commands(block=not self._engine.has_unfinished_requests()):
                if self._engine.has_unfinished_requests():
                    self._step()
        except Exception as exc:
            logger.exception("the engine loop crashed")
            reason = f"the engine loop crashed: {type(exc).__name__}: {exc}"
        finally:
            self._closed = True
            for request_id in list(self._live):
                self._fail(request_id, EngineFailed(reason))
            self._fail_pending_commands(EngineFailed(reason))

    def _fail_pending_commands(self, error: EngineFailed) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            if command is not None and command.future is not None:
                self._loop.call_soon_threadsafe(_settle, command.future, None, error)

    def _run_commands(self, block: bool) -> bool:
        """Run queued commands (waiting for one if ``block``); False once ``stop`` was asked."""
        try:
            command = self._commands.get(block=block)
        except queue.Empty:
            return True
        while command is not None:
            self._execute(command)
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return True
        return False

    def _execute(self, command: _Command) -> None:
        try:
            result = command.run()
        except Exception as exc:   # delivered to the awaiting coroutine
            if command.future is None:
                logger.exception("engine command failed")
            else:
                self._loop.call_soon_threadsafe(_settle, command.future, None, exc)
            return
        if command.future is not None:
            self._loop.call_soon_threadsafe(_settle, command.future, result, None)

    def _add(self, stream: RequestStream, prompt_token_ids: List[int], sampling_params: Any) -> None:
        self._engine.add_request(stream.request_id, prompt_token_ids, sampling_params)
        self._live[stream.request_id] = stream

    def _abort(self, request_id: str) -> None:
        if self._live.pop(request_id, None) is not None:
            self._engine.abort_request(request_id)
            self._num_aborted += 1

    def _step(self) -> None:
        try:
            deltas = self._engine.step()
        except Exception as exc:
            logger.exception("engine step failed; failing every live request")
            for request_id in list(self._live):
                self._fail(request_id, EngineFailed(f"engine step failed: {type(exc).__name__}: {exc}"))
            return
        routed = []
        for delta in deltas:
            stream = self._live.get(delta.request_id)
            if stream is None:   # aborted after the step began
                continue
            if delta.error:
                self._live.pop(delta.request_id)
                routed.append((stream, EngineFailed(str(delta.error))))
                continue
            routed.append((stream, RequestUpdate(list(delta.new_token_ids), delta.finished, delta.finish_reason, delta.num_cached_tokens)))
            if delta.finished:
                self._live.pop(delta.request_id)
        if routed:
            self._loop.call_soon_threadsafe(_deliver, routed)

    def _fail(self, request_id: str, error: EngineFailed) -> None:
        stream = self._live.pop(request_id)
        try:
            self._engine.abort_request(request_id)
        except Exception:
            logger.exception("abort of %s failed", request_id)
        self._loop.call_soon_threadsafe(_deliver, [(stream, error)])


def _settle(future: asyncio.Future, result: Any, error: Optional[BaseException]) -> None:
    """Resolve ``future`` unless its awaiting coroutine was cancelled meanwhile."""
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def _deliver(routed: List[Any]) -> None:
    for stream, item in routed:
        stream._put(item)
