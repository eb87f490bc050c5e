"""Blocking reads: prompt cancellation, their own connection, and no socket-timeout trips."""

from __future__ import annotations

import anyio
import pytest
import redis.asyncio as aioredis

from streamsink.backend import Entry, StartPosition
from streamsink_redis import RedisBackend

from .conftest import OpenBackend, with_query

pytestmark = pytest.mark.anyio

NEWEST = StartPosition.newest()


async def _blocked_clients(raw: aioredis.Redis, url: str) -> int:
    if url.startswith("fakeredis://"):
        return 0
    info = await raw.info("clients")
    return int(info["blocked_clients"])


async def test_cancelling_a_blocked_group_read_is_prompt(
    open_backend: OpenBackend, raw: aioredis.Redis, url: str, stream_id: str
) -> None:
    """Cancelling a 5 s XREADGROUP returns at once and leaves the consumer usable."""
    backend = await open_backend(block_ms=5000)
    consumer = await backend.open_group_consumer(stream_id, "g", "c", NEWEST)
    for _ in range(2):
        start = anyio.current_time()
        with anyio.move_on_after(0.1):
            await consumer.read_new(10, 5)
        assert anyio.current_time() - start < 0.5
    assert await _blocked_clients(raw, url) == 0
    ids = await backend.append([Entry(stream_id, "x", b"{}")])
    assert [r.entry_id for r in await consumer.read_new(10, 1)] == ids


async def test_cancelling_a_blocked_reader_is_prompt(
    open_backend: OpenBackend, raw: aioredis.Redis, url: str, stream_id: str
) -> None:
    """Cancelling a 5 s XREAD returns at once and leaves the reader usable."""
    backend = await open_backend(block_ms=5000)
    reader = await backend.open_reader(stream_id, NEWEST)
    start = anyio.current_time()
    with anyio.move_on_after(0.1):
        await reader.read(10, 5)
    assert anyio.current_time() - start < 0.5
    assert await _blocked_clients(raw, url) == 0
    ids = await backend.append([Entry(stream_id, "x", b"{}")])
    assert [r.entry_id for r in await reader.read(10, 1)] == ids


async def test_block_longer_than_socket_timeout_does_not_trip(
    redis_url: str, stream_id: str
) -> None:
    """A blocking read longer than socket_timeout waits its full time and returns empty."""
    url = with_query(redis_url, socket_timeout=0.2, block_ms=5000)
    async with await RedisBackend.open(url) as backend:
        consumer = await backend.open_group_consumer(stream_id, "g", "c", NEWEST)
        start = anyio.current_time()
        assert await consumer.read_new(10, 0.6) == []
        assert 0.55 <= anyio.current_time() - start < 1.5


async def test_block_is_capped_by_block_ms(open_backend: OpenBackend, stream_id: str) -> None:
    """A wait longer than block_ms is cut to block_ms."""
    backend = await open_backend(block_ms=100)
    reader = await backend.open_reader(stream_id, NEWEST)
    start = anyio.current_time()
    assert await reader.read(10, 30) == []
    assert anyio.current_time() - start < 1.0


async def test_blocked_reads_do_not_hold_pool_connections(redis_url: str, stream_id: str) -> None:
    """Many blocked consumers do not starve a small pool: appends still go through."""
    async with await RedisBackend.open(with_query(redis_url, max_connections=2)) as backend:
        await _appends_reach_blocked_consumers(backend, stream_id)


async def _appends_reach_blocked_consumers(backend: RedisBackend, stream_id: str) -> None:
    consumers = [
        await backend.open_group_consumer(stream_id, "g", f"c{i}", NEWEST) for i in range(6)
    ]
    got: list[str] = []

    async def read(index: int) -> None:
        got.extend(r.entry_id for r in await consumers[index].read_new(1, 2))

    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for index in range(len(consumers)):
            tg.start_soon(read, index)
        await anyio.sleep(0.1)
        ids = await backend.append([Entry(stream_id, "x", b"{}") for _ in consumers])
    assert sorted(got) == sorted(ids)
    assert anyio.current_time() - start < 1.5


async def test_closing_leaves_no_connection_behind(redis_url: str, stream_id: str) -> None:
    """After aclose the server sees no more clients from the backend (pool and read connections)."""
    raw = aioredis.Redis.from_url(redis_url, protocol=2)
    try:
        before = len(await raw.client_list())
        backend = await RedisBackend.open(redis_url)
        consumers = [
            await backend.open_group_consumer(stream_id, "g", f"c{i}", NEWEST) for i in range(3)
        ]
        reader = await backend.open_reader(stream_id, NEWEST)
        with anyio.move_on_after(0.1):
            await consumers[0].read_new(1, 5)
        await reader.read(1, 0)
        assert len(await raw.client_list()) > before
        await backend.aclose()
        for _ in range(100):  # the server notices closed sockets asynchronously
            if len(await raw.client_list()) <= before:
                break
            await anyio.sleep(0.02)
        assert len(await raw.client_list()) == before
    finally:
        await raw.aclose()
