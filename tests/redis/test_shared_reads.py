"""Shared fan-out reads on a real redis-server: one blocking multi-stream XREAD per lane
connection serves every fan-out subscription of the process (the memory:// side of the same
scenarios is tests/core/test_shared_reads.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import ConnectionPool

from streamsink.backend import RecordBatch, StartPosition, StreamBatch
from streamsink_redis import RedisBackend
from streamsink_redis._positions import CHECK_STREAM
from streamsink_redis._shared_read import RedisCursor
from tests.support import shared_reads as scenarios

from .conftest import with_query

pytestmark = pytest.mark.anyio


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, protocol=2)
    try:
        yield client
    finally:
        await client.aclose()


async def _open(redis_url: str, **options: object) -> RedisBackend:
    return await RedisBackend.open(with_query(redis_url, maxlen=0, **options))


async def test_500_readers_over_50_streams_on_a_few_connections(
    redis_url: str, raw: aioredis.Redis
) -> None:
    """Every entry once, in order, to each of 500 readers, on at most the backend's few
    connections (command, pool, one lane: 50 streams fit one XREAD)."""
    before = len(await raw.client_list())
    during: list[int] = []

    async def count() -> None:
        during.append(len(await raw.client_list()) - before)

    backend = await _open(redis_url)
    try:
        await scenarios.every_reader_gets_every_entry(backend, while_joined=count)
    finally:
        await backend.aclose()
    assert during[0] <= 4, f"{during[0]} connections for 500 readers"


async def test_lanes_bound_the_read_connections(redis_url: str, raw: aioredis.Redis) -> None:
    """With 10 streams per XREAD and 2 lanes, 60 streams use 2 read connections, not 60."""
    before = len(await raw.client_list())
    during: list[int] = []

    async def count() -> None:
        during.append(len(await raw.client_list()) - before)

    backend = await _open(redis_url, shared_read_streams=10, shared_read_connections=2)
    try:
        await scenarios.every_reader_gets_every_entry(
            backend, readers=120, streams_count=60, entries=3, while_joined=count
        )
    finally:
        await backend.aclose()
    assert during[0] <= 5, f"{during[0]} connections for 60 streams on 2 lanes"


async def test_a_slow_reader_neither_stalls_others_nor_grows(redis_url: str) -> None:
    backend = await _open(redis_url)
    try:
        await scenarios.slow_reader_is_detached_and_catches_up(backend)
    finally:
        await backend.aclose()


async def test_trimming_a_detached_reader_reports_the_gap(redis_url: str) -> None:
    backend = await RedisBackend.open(with_query(redis_url, maxlen=20))
    try:
        await scenarios.trimming_overtakes_a_detached_reader(backend)
    finally:
        await backend.aclose()


async def _unblocks(raw: aioredis.Redis) -> int:
    stats = await raw.info("commandstats")
    return int(stats.get("cmdstat_client|unblock", {}).get("calls", 0))


async def test_joins_and_leaves_while_blocked_are_prompt(
    redis_url: str, raw: aioredis.Redis
) -> None:
    """A join on a new stream interrupts the blocked XREAD with CLIENT UNBLOCK (keeping its
    connection) instead of waiting out its 5 s block."""
    before = await _unblocks(raw)
    backend = await _open(redis_url)
    try:
        await scenarios.joins_and_leaves_are_prompt_while_blocked(backend)
    finally:
        await backend.aclose()
    assert await _unblocks(raw) > before, "no CLIENT UNBLOCK was sent"


async def test_cancelling_the_leader(redis_url: str) -> None:
    backend = await _open(redis_url)
    try:
        await scenarios.cancelling_the_leader_hands_the_read_over(backend)
    finally:
        await backend.aclose()


async def test_backend_close_ends_everything(redis_url: str) -> None:
    await scenarios.backend_close_ends_every_reader(await _open(redis_url))


async def test_fakeredis_shares_reads_too() -> None:
    """fakeredis polls its shared reads (no CLIENT UNBLOCK), with the same results."""
    backend = await RedisBackend.open("fakeredis://shared-reads?maxlen=0")
    try:
        await scenarios.every_reader_gets_every_entry(
            backend, readers=40, streams_count=8, entries=5
        )
        await scenarios.joins_and_leaves_are_prompt_while_blocked(backend)
    finally:
        await backend.aclose()


async def test_an_entry_added_between_the_check_and_the_read_is_no_gap(redis_url: str) -> None:
    """The check script and the XREAD of a shared read are pipelined, not atomic: in a long
    pipeline (a check per stream of the lane) Redis runs other clients' commands between them.
    An entry appended there is read without having been counted; it must count in the reader's
    position, not come back later as an entry "trimmed unread" (a false gap report). The steps
    run here one by one, with the appends in between."""
    backend = await _open(redis_url)
    pool = ConnectionPool.from_url(redis_url, protocol=2)
    conn = await pool.get_connection()
    try:
        shared = await backend.open_shared_reads()
        key = backend.key("check-then-read")

        async def run(*command: object) -> Any:
            await conn.send_command(*command)
            return await conn.read_response()

        async def checked_read(cursor: RedisCursor, between: int) -> tuple[StreamBatch, Any]:
            check = await run("EVAL", CHECK_STREAM, 1, key, cursor.after, "1")
            for i in range(between):  # another client's appends
                await run("XADD", key, "*", "p", f"late-{i}")
            reply = await run("XREAD", "COUNT", 10, "STREAMS", key, cursor.after)
            (batch,), (moved,) = shared._batches([cursor], 10, reply, {key: check})
            return batch, moved

        cursor = await shared.resolve("check-then-read", StartPosition.newest())  # no stream yet
        batch, cursor = await checked_read(cursor, between=1)
        assert len(batch.records) == 1
        assert cursor.pos == 1, "the entry read counts in the reader's position"
        await run("XADD", key, "*", "p", "next")
        batch, cursor = await checked_read(cursor, between=2)
        assert len(batch.records) == 3
        assert type(batch.records) is not RecordBatch, f"a false gap: {batch.records.gap}"
        assert cursor.pos == 4
    finally:
        await pool.disconnect()
        await backend.aclose()
