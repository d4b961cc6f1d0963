"""Builds the model's LLM and serves it: ``run_server`` is what ``trtllm-flash serve`` calls."""
from __future__ import annotations

import logging
import socket
from typing import Any, Dict, List, Sequence

import uvicorn
from fastapi import FastAPI

from ..llm import LLM
from ..llm_args import load_llm_args
from ..sampling_params import SamplingParams
from .app import build_app
from .engine_loop import EngineLoop
from .generation import ServedModel

logger = logging.getLogger(__name__)


def engine_stats(engine: Any) -> Dict[str, int]:
    """Running / waiting requests, KV pages and state slots in use (called on the engine thread)."""
    return dict(engine.stats)


def build_server_app(model: str, yaml_paths: Sequence[str] = (), overrides: Dict[str, Any] = None,
                     max_waiting_requests: int = 256) -> FastAPI:
    """Build ``model`` with the LLM args of ``yaml_paths`` + ``overrides`` and return the app serving it."""
    llm_args = load_llm_args(list(yaml_paths), {**(overrides or {}), "model": model})
    llm = LLM(args=llm_args, progress=logger.info)
    served = ServedModel(name=model, tokenizer=llm.tokenizer, max_seq_len=llm.args.max_seq_len,
                         num_memory_tokens=len(llm.tokenizer.memory_token_ids), make_sampling_params=SamplingParams)
    engine_loop = EngineLoop(llm.engine, max_running=llm.args.max_batch_size, max_waiting=max_waiting_requests,
                             stats=engine_stats)
    return build_app(served, engine_loop)


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` and listening (``port`` 0: the OS picks a free port)."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family, backlog=2048)


def run_server(model: str, yaml_paths: List[str], overrides: Dict[str, Any], host: str, port: int,
               max_waiting_requests: int, log_level: str) -> None:
    """Build and serve ``model`` on ``host:port`` until interrupted.

    Once the port is bound, one line ``trtllm-flash: serving <model> at http://<host>:<port>/v1`` goes
    to stdout whatever the log level, so a launcher that asked for port 0 learns the port.
    """
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = build_server_app(model, yaml_paths, overrides, max_waiting_requests)
    sock = listening_socket(host, port)
    print(f"trtllm-flash: serving {model} at http://{host}:{sock.getsockname()[1]}/v1", flush=True)
    config = uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=10)
    uvicorn.Server(config).run(sockets=[sock])
