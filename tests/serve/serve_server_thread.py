"""Runs an ASGI app with uvicorn on 127.0.0.1 in a background thread, on a port the OS picks."""
from __future__ import annotations

import socket
import threading
import time

from trtllm_flash.serve.server import make_server


class ServerThread:
    """Context manager: serve ``app`` (from ``build_app``) on 127.0.0.1 until the block exits, as
    ``trtllm-flash serve`` does but with a ``grace_s`` shutdown grace; ``base_url`` points at it."""

    def __init__(self, app, startup_timeout_s: float = 60.0, grace_s: float = 5.0):
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._server = make_server(app, log_level="warning", grace_s=grace_s)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)
        self._startup_timeout_s = startup_timeout_s

    def __enter__(self) -> "ServerThread":
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()
