"""Starts ``trtllm-flash serve`` in a subprocess on 127.0.0.1, for end-to-end tests.

The server is started with ``--port 0`` and the port is read from its "serving ... at" line: the
server holds the port from the moment it is chosen, so no other process can take it in between
(a probe-then-close port could be taken by a parallel test run while the model builds).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from typing import List

import httpx

_SERVING_LINE = re.compile(r"trtllm-flash: serving \S+ at (http://127\.0\.0\.1:\d+)/v1")


class ServeProcess:
    """Context manager: the CLI server for ``model`` with ``flags``; waits (bounded) until /health is ok."""

    def __init__(self, model: str, flags: List[str], startup_timeout_s: float = 240.0):
        self._command = [sys.executable, "-m", "trtllm_flash.cli", "serve", model, "--host", "127.0.0.1",
                         "--port", "0", "--log_level", "warning", *flags]
        self._startup_timeout_s = startup_timeout_s
        self.base_url = ""

    def __enter__(self) -> "ServeProcess":
        # a file, not a pipe: a pipe nobody reads would block the server once its buffer is full;
        # the server writes through its own handle, so reading here never moves its write position
        descriptor, self._log_path = tempfile.mkstemp(prefix="trtllm-flash-serve-", suffix=".log")
        with os.fdopen(descriptor, "w") as server_output:
            self._process = subprocess.Popen(self._command, stdout=server_output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self._startup_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the server exited ({self._process.returncode}):\n{self.log()}")
            if self._ready():
                return self
            time.sleep(0.25)
        self.__exit__()
        raise RuntimeError(f"the server did not become healthy within {self._startup_timeout_s} s:\n{self.log()}")

    def _ready(self) -> bool:
        if not self.base_url:
            found = _SERVING_LINE.search(self.log())
            if found is None:
                return False
            self.base_url = found.group(1)
        try:
            return httpx.get(self.base_url + "/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def __exit__(self, *exc_info) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=30)
        os.unlink(self._log_path)

    def log(self) -> str:
        """What the server printed so far."""
        with open(self._log_path, errors="replace") as server_output:
            return server_output.read()
