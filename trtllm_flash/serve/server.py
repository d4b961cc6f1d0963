"""Builds the model's LLM and serves it: ``run_server`` is what ``trtllm-flash serve`` calls."""
from __future__ import annotations

import logging
import socket
from typing import Any, Callable, Dict, List, Sequence

import uvicorn
from fastapi import FastAPI

from ..llm import LLM
from ..llm_args import load_llm_args
from ..sampling_params import SamplingParams
from .app import DEFAULT_MAX_BODY_BYTES, build_app
from .engine_loop import EngineLoop
from .generation import ServedModel

logger = logging.getLogger(__name__)

#: seconds running requests get to finish once shutdown begins (then they end with 503 / an error event)
SHUTDOWN_GRACE_S = 10


def engine_stats(engine: Any) -> Dict[str, int]:
    """Running / waiting requests, KV pages and state slots in use (called on the engine thread)."""
    return dict(engine.stats)


def longest_token_chars(tokenizer: Any) -> int:
    """Characters of the longest token in ``tokenizer``'s vocabulary (special tokens included): no token of
    an encoded text covers more, so a text of ``n * this`` characters has more than ``n`` tokens."""
    return max(len(token) for token in tokenizer.get_vocab())


def build_server_app(model: str, yaml_paths: Sequence[str] = (), overrides: Dict[str, Any] = None,
                     max_waiting_requests: int = 256, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    """Build ``model`` with the LLM args of ``yaml_paths`` + ``overrides`` and return the app serving it."""
    llm_args = load_llm_args(list(yaml_paths), {**(overrides or {}), "model": model})
    llm = LLM(args=llm_args, progress=logger.info)
    served = ServedModel(name=model, tokenizer=llm.tokenizer, max_seq_len=llm.args.max_seq_len,
                         num_memory_tokens=len(llm.tokenizer.memory_token_ids), make_sampling_params=SamplingParams,
                         max_chars_per_token=longest_token_chars(llm.tokenizer),
                         max_request_tokens=llm.engine.max_request_tokens)
    engine_loop = EngineLoop(llm.engine, max_running=llm.args.max_batch_size, max_waiting=max_waiting_requests,
                             stats=engine_stats)
    return build_app(served, engine_loop, max_body_bytes=max_body_bytes)


def bound_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (``port`` 0: the OS picks a free port); uvicorn starts listening on
    it once the app is ready, so until then a client is refused rather than left waiting.

    Raises ValueError naming the address when it cannot be bound (in use, no such host, bad port)."""
    if not 0 <= port <= 65535:
        raise ValueError(f"--port {port}: a port is 0 to 65535 (0 picks a free one)")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ValueError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ValueError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


class GracefulServer(uvicorn.Server):
    """uvicorn's server, telling the app when shutdown begins (``begin_shutdown(grace_s)``) so requests
    still running at the end of the grace period get an answer instead of a cut connection."""

    def __init__(self, config: uvicorn.Config, begin_shutdown: Callable[[float], None]):
        super().__init__(config)
        self._begin_shutdown = begin_shutdown

    async def shutdown(self, sockets: List[socket.socket] = None) -> None:
        self._begin_shutdown(float(self.config.timeout_graceful_shutdown or 0))
        await super().shutdown(sockets=sockets)


def make_server(app: FastAPI, log_level: str = "info", grace_s: float = SHUTDOWN_GRACE_S) -> GracefulServer:
    """The uvicorn server for ``app`` (built by :func:`trtllm_flash.serve.app.build_app`)."""
    config = uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=grace_s)
    return GracefulServer(config, app.state.begin_shutdown)


def run_server(model: str, yaml_paths: List[str], overrides: Dict[str, Any], host: str, port: int,
               max_waiting_requests: int, log_level: str, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
    """Build and serve ``model`` on ``host:port`` until interrupted.

    The port is bound first, so an address in use is reported before the (slow) model build. Once the
    model is built, one line ``trtllm-flash: serving <model> at http://<host>:<port>/v1`` goes to stdout
    whatever the log level, so a launcher that asked for port 0 learns the port.
    """
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sock = bound_socket(host, port)
    try:
        app = build_server_app(model, yaml_paths, overrides, max_waiting_requests, max_body_bytes)
    except BaseException:
        sock.close()
        raise
    print(f"trtllm-flash: serving {model} at http://{host}:{sock.getsockname()[1]}/v1", flush=True)
    make_server(app, log_level).run(sockets=[sock])
