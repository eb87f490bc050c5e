"""Fixtures for the Redis backend tests: asyncio only, a private redis-server, fakeredis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from urllib.parse import urlencode, urlsplit

import fakeredis
import pytest
import redis.asyncio as aioredis

from streamsink_redis import RedisBackend
from streamsink_redis._connection import fake_server

OpenBackend = Callable[..., Awaitable[RedisBackend]]


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


def with_query(url: str, **options: object) -> str:
    """``url`` with more query options."""
    if not options:
        return url
    sep = "&" if urlsplit(url).query else "?"
    return url + sep + urlencode({k: str(v) for k, v in options.items()})


@pytest.fixture
def stream_id() -> str:
    """A stream id no other test uses."""
    return f"test/{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def open_backend(url: str) -> AsyncIterator[OpenBackend]:
    """Open RedisBackends on ``url`` with extra query options; all closed after the test."""
    async with AsyncExitStack() as stack:

        async def open_(**options: object) -> RedisBackend:
            backend = await RedisBackend.open(with_query(url, **options))
            stack.push_async_callback(backend.aclose)
            return backend

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
