"""Fixtures for the Redis backend tests: asyncio only, a private redis-server, fakeredis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import fakeredis
import pytest
import redis.asyncio as aioredis

from streamsink_redis import RedisBackend
from streamsink_redis._connection import fake_server
from tests.support.redis_backends import OpenBackend, opened_backends
from tests.support.redis_backends import with_query as with_query  # tests import it from here


@pytest.fixture
def anyio_backend() -> str:
    """redis.asyncio runs on asyncio only."""
    return "asyncio"


@pytest.fixture(params=["fakeredis", "redis"])
def url(request: pytest.FixtureRequest) -> str:
    """A backend URL: a fresh named fakeredis server, or the real test server."""
    if request.param == "fakeredis":
        return f"fakeredis://t-{uuid.uuid4().hex[:12]}"
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
def stream_id() -> str:
    """A stream id no other test uses."""
    return f"test/{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def open_backend(url: str) -> AsyncIterator[OpenBackend]:
    """Open RedisBackends on ``url`` with extra query options; all closed after the test."""
    async with opened_backends(url) as open_:
        yield open_


@pytest.fixture
async def backend(open_backend: OpenBackend) -> RedisBackend:
    """An open RedisBackend with default options on ``url``."""
    return await open_backend()


def raw_client_for(url: str) -> aioredis.Redis:
    """A plain redis-py client (RESP2, bytes) on the same data as a backend URL."""
    if url.startswith("fakeredis://"):
        name = urlsplit(url).netloc
        return fakeredis.FakeAsyncRedis(server=fake_server(name), protocol=2)
    return aioredis.Redis.from_url(url, protocol=2)


@pytest.fixture
async def raw(url: str) -> AsyncIterator[aioredis.Redis]:
    """A plain redis-py client on the same data as ``backend``, to look at or write raw entries."""
    client = raw_client_for(url)
    try:
        yield client
    finally:
        await client.aclose()
