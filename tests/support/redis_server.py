"""Start a private ``redis-server`` process on a free port, for tests that need a real server.

Needs no redis client: readiness is checked with a raw ``PING`` over a socket. ::

    with RedisServer() as server:
        url = server.url            # redis://127.0.0.1:<port>/0
        server.kill()               # SIGKILL, as a crash
        server.restart()            # same port and data directory
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.lifecycle import Started, free_port

__all__ = ["RedisServer", "RedisServerError", "find_redis_server"]


class RedisServerError(RuntimeError):
    """The server did not start or answer in time."""


def find_redis_server() -> str | None:
    """Path of the ``redis-server`` binary (``STREAMSINK_REDIS_SERVER`` overrides), or None."""
    return os.environ.get("STREAMSINK_REDIS_SERVER") or shutil.which("redis-server")


def _ping(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            # NOAUTH: up, but password-protected (--requirepass).
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


class RedisServer(Started):
    """A private redis-server: ``--port N --save "" --appendonly no`` unless told otherwise.

    :param appendonly: write an append-only file (``--appendonly yes``).
    :param appendfsync: with ``appendonly``, the fsync policy (``always`` loses nothing on kill).
    :param data_dir: where the server keeps its files; a temporary directory (removed by
        :meth:`stop`) when None.
    :param extra_args: more ``redis-server`` arguments.
    :param startup_timeout: seconds to wait for the first PONG.
    """

    def __init__(
        self,
        *,
        binary: str | None = None,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        data_dir: str | os.PathLike[str] | None = None,
        extra_args: tuple[str, ...] = (),
        startup_timeout: float = 10.0,
    ) -> None:
        found = binary or find_redis_server()
        if not found:
            raise RedisServerError("no redis-server binary on PATH")
        self.binary = found
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.extra_args = extra_args
        self.startup_timeout = startup_timeout
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="redis-"))
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    def _args(self) -> list[str]:
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--logfile", str(self.log_path),
            "--save", "",
        ]  # fmt: skip
        if self.appendonly:
            args += ["--appendonly", "yes", "--appendfsync", self.appendfsync]
        else:
            args += ["--appendonly", "no"]
        return args + list(self.extra_args)

    def start(self) -> RedisServer:
        """Start on a free port (the same port again after a stop or kill) and wait for PONG."""
        if self.running:
            return self
        if not self.port:
            self.port = free_port()
        self._process = subprocess.Popen(
            self._args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if _ping(self.port):
                return self
            if self._process.poll() is not None:
                break
            time.sleep(0.02)
        log = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
        self._terminate(signal.SIGKILL)
        raise RedisServerError(f"redis-server on port {self.port} did not start:\n{log}")

    def kill(self) -> None:
        """SIGKILL the server, as a crash would, and wait until it is gone."""
        self._terminate(signal.SIGKILL)

    def restart(self) -> RedisServer:
        """Kill the server if it runs, then start it again on the same port and data dir."""
        self.kill()
        return self.start()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove a temporary data dir."""
        self._terminate(signal.SIGTERM)
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _terminate(self, sig: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
