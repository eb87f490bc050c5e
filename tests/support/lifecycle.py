"""What the servers and proxies the tests start share: a free loopback port, and ``with``
meaning start, then stop however the block ends."""

from __future__ import annotations

import socket
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any, Self

__all__ = ["Started", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the OS picks it; another process
    could still take it before it is used)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Started(ABC):
    """``with thing:`` starts it (the block gets what :meth:`start` returns) and stops it on
    the way out, also when the block raises."""

    @abstractmethod
    def start(self) -> Any:
        """Start (and return self); starting what runs already changes nothing."""

    @abstractmethod
    def stop(self) -> None:
        """Stop and release everything :meth:`start` took; stopping twice changes nothing."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
