"""``streamsink serve`` as a real server process on a free port: start, SIGKILL, restart.

Used by the real-browser test, the CLI tests and ``benchmarks/sse_load.py``. ::

    with ServeProcess(["--url", redis_url]) as gateway:
        gateway.origin            # http://127.0.0.1:<port>
        gateway.kill()            # SIGKILL, as a crash
        gateway.start()           # again, on the same port
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.support.lifecycle import Started, free_port

__all__ = ["ServeProcess", "free_port", "wait_for_port"]


def wait_for_port(
    port: int, timeout: float = 10.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until something accepts connections on ``127.0.0.1:port``.

    :raises RuntimeError: not within ``timeout``, or ``process`` exited first.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"the server exited with status {process.returncode} before listening"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:g} s")


class ServeProcess(Started):
    """``python -m streamsink serve ARGS --port PORT`` in a subprocess; its output goes to
    ``log_dir`` (a file per start), so a failing test can show it."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.args = list(args)
        self.port = port or free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSINK_")}
        self.env.update(env or {})
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._log: Path | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def start(self, timeout: float = 15.0) -> ServeProcess:
        command = [
            sys.executable,
            "-m",
            "streamsink",
            "serve",
            *self.args,
            "--port",
            str(self.port),
        ]
        self.starts += 1
        log = None
        if self.log_dir is not None:
            self._log = self.log_dir / f"serve-{self.port}-{self.starts}.log"
            log = self._log.open("wb")
        try:
            self.process = subprocess.Popen(
                command,
                env=self.env,
                stdout=subprocess.DEVNULL if log is None else log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            if log is not None:
                log.close()  # the child has its own descriptor
        wait_for_port(self.port, timeout, self.process)
        return self

    def output(self) -> str:
        """What the last start printed (stdout and stderr), when a ``log_dir`` was given."""
        return self._log.read_text(errors="replace") if self._log and self._log.exists() else ""

    def kill(self) -> None:
        """SIGKILL, and wait for it to be gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(5)

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down gracefully), then SIGKILL if still there after 5 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()
