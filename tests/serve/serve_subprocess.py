"""Starts ``trtllm-flash serve`` in a subprocess on 127.0.0.1 and a free port, for end-to-end tests."""
from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from typing import List

import httpx


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServeProcess:
    """Context manager: the CLI server for ``model`` with ``flags``; waits (bounded) until /health is ok."""

    def __init__(self, model: str, flags: List[str], startup_timeout_s: float = 240.0):
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._command = [sys.executable, "-m", "trtllm_flash.cli", "serve", model, "--host", "127.0.0.1",
                         "--port", str(self.port), "--log_level", "warning", *flags]
        self._startup_timeout_s = startup_timeout_s
        self._process: subprocess.Popen = None

    def __enter__(self) -> "ServeProcess":
        # a file, not a pipe: a pipe nobody reads would block the server once its buffer is full
        self._log = tempfile.TemporaryFile(mode="w+")
        self._process = subprocess.Popen(self._command, stdout=self._log, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + self._startup_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the server exited ({self._process.returncode}):\n{self.log()}")
            try:
                if httpx.get(self.base_url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        self.__exit__()
        raise RuntimeError(f"the server did not become healthy within {self._startup_timeout_s} s")

    def __exit__(self, *exc_info) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=30)
        self._log.close()

    def log(self) -> str:
        """What the server printed so far."""
        self._log.seek(0)
        return self._log.read()
