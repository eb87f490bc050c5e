"""The Redis a stand-alone benchmark runs against: the one given, else a private redis-server."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["redis_url"]


@contextlib.contextmanager
def redis_url(url: str | None, *server_args: str) -> Iterator[str]:
    """``url`` when given; otherwise a private redis-server on a free port (started with
    ``server_args``), stopped on exit."""
    if url:
        yield url
        return
    from tests.support.redis_server import RedisServer

    with RedisServer(extra_args=server_args) as server:
        yield server.url
