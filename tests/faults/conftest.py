"""Fixtures of the fault suite: real redis-server processes to kill, flush and restart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.redis_fixtures import missing_redis
from tests.support.redis_server import RedisServer, RedisServerError, find_redis_server


@pytest.fixture
def anyio_backend() -> str:
    """The Redis backend runs on asyncio only."""
    return "asyncio"


def _server(**options: object) -> RedisServer:
    if not find_redis_server():
        missing_redis("no redis-server binary on PATH (the fault suite kills and restarts one)")
    try:
        return RedisServer(**options).start()  # type: ignore[arg-type]
    except RedisServerError as exc:
        missing_redis(str(exc))
        raise


@pytest.fixture
def durable_server() -> Iterator[RedisServer]:
    """A redis-server of this test's own with an append-only file fsynced on every write
    (``appendonly yes``, ``appendfsync always``): a SIGKILL loses nothing it acknowledged."""
    server = _server(appendonly=True, appendfsync="always")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A redis-server of this test's own, to FLUSHALL."""
    server = _server()
    try:
        yield server
    finally:
        server.stop()
