"""The drain over every session (docs/drain.md) on Redis: a real private redis-server and
fakeredis. Why the sink makes two appends (a pipelined multi-entry append half-fails), what a
half-failed send leaves, order per session under concurrent sends, and relays."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import anyio
import pytest
import redis.asyncio as aioredis

from streamsink import (
    ConfigurationError,
    DrainAppendError,
    DrainOptions,
    EntriesSkippedError,
    SinkOptions,
    StartPosition,
    StreamEvent,
    StreamSink,
    StreamsinkError,
    StreamSubscriber,
    SubscriberOptions,
    decode_drain_copy,
)
from streamsink.backend import Entry
from streamsink_redis import RedisBackend

from .conftest import OpenBackend

pytestmark = pytest.mark.anyio
T = TypeVar("T")
KEY = "pulse:stream:{}"


async def take(items: AsyncIterator[T], count: int, within: float = 5.0) -> list[T]:
    got: list[T] = []
    with anyio.fail_after(within):
        async for item in items:
            got.append(item)
            if len(got) == count:
                break
    assert len(got) == count, f"ended after {len(got)} of {count}"
    return got


def subscriber(backend: Any, **options: Any) -> StreamSubscriber:
    options.setdefault("claim_interval", 0.05)
    options.setdefault("start", StartPosition.oldest())
    return StreamSubscriber(backend, SubscriberOptions(**options))


def event(session: str, index: int) -> StreamEvent:
    return StreamEvent("tool_start", f"run-{index}", session, payload={"index": index})


async def read_all(backend: Any, stream_id: str) -> list[Any]:
    reader = await backend.open_reader(stream_id, StartPosition.oldest())
    records: list[Any] = []
    try:
        while batch := await reader.read(1000, 0.05):
            records.extend(batch)
    finally:
        await reader.aclose()
    return records


@pytest.fixture
def drain() -> DrainOptions:
    return DrainOptions(shards=4, prefix=f"drain-{uuid.uuid4().hex[:8]}")


@pytest.fixture
async def real(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, protocol=2)
    try:
        yield client
    finally:
        await client.aclose()


async def test_a_pipelined_two_stream_append_half_fails(
    redis_url: str, real: aioredis.Redis
) -> None:
    """Why the sink does not put an event and its copy in one ``append``: the backend pipelines
    one XADD per entry, without MULTI, and one refused XADD leaves the others written."""
    token = uuid.uuid4().hex[:8]
    stream, aggregate = f"session/{token}", f"drain-{token}/0"
    await real.set(KEY.format(aggregate), b"not a stream")  # XADD there: WRONGTYPE
    backend = await RedisBackend.open(redis_url)
    try:
        with pytest.raises(ConfigurationError, match="WRONGTYPE"):
            await backend.append(
                [Entry(stream, "tool_start", b"{}"), Entry(aggregate, "tool_start", b"{}")]
            )
        assert await real.xlen(KEY.format(stream)) == 1  # the first XADD ran: half written
    finally:
        await backend.aclose()
        await real.delete(KEY.format(stream), KEY.format(aggregate))


async def test_a_refused_copy_raises_drain_append_error_and_redrain_writes_it(
    redis_url: str, real: aioredis.Redis, drain: DrainOptions
) -> None:
    session = uuid.uuid4().hex[:8]
    stream = f"session/{session}"
    shard = drain.shard_of(stream)
    await real.set(KEY.format(shard), b"not a stream")
    backend = await RedisBackend.open(redis_url)
    try:
        sink = StreamSink(backend, SinkOptions(drain=drain))
        with pytest.raises(DrainAppendError) as raised:
            await sink.send(event(session, 1))
        error = raised.value
        assert isinstance(error.__cause__, ConfigurationError)  # how redis reports WRONGTYPE
        assert "WRONGTYPE" in str(error)
        (entry_id,) = [i.decode() for i, _ in await real.xrange(KEY.format(stream))]
        assert error.written == ((stream, entry_id),)
        await real.delete(KEY.format(shard))  # the operator fixes the key
        await sink.redrain(error)
        async with subscriber(backend, group="d").subscribe_drain(drain) as events:
            (got,) = await take(events, 1)
        assert (got.stream_id, got.entry_id, got.payload) == (stream, entry_id, {"index": 1})
    finally:
        await backend.aclose()
        await real.delete(KEY.format(stream), *(KEY.format(s) for s in drain.stream_ids()))


async def test_concurrent_sends_keep_each_session_in_order_in_its_shard(
    open_backend: OpenBackend, drain: DrainOptions
) -> None:
    backend = await open_backend()
    sink = StreamSink(backend, SinkOptions(drain=drain))
    sessions = [uuid.uuid4().hex[:8] for _ in range(16)]
    sent: dict[str, list[str]] = {f"session/{s}": [] for s in sessions}

    async def publish(session: str) -> None:
        for index in range(20):
            published = await sink.send(event(session, index))
            sent[published.stream_id].append(published.entry_id)

    try:
        async with anyio.create_task_group() as tg:  # sends share pipelined round trips
            for session in sessions:
                tg.start_soon(publish, session)
        for stream_id in sent:  # each stream's copies are in its one shard, in order
            shard = drain.shard_of(stream_id)
            copies = [decode_drain_copy(r.payload or b"") for r in await read_all(backend, shard)]
            assert [c.entry_id for c in copies if c.stream_id == stream_id] == sent[stream_id]
        total = sum(map(len, sent.values()))
        got: list[list[StreamEvent]] = [[], []]

        async def drain_into(index: int) -> None:
            async with subscriber(backend, group="d").subscribe_drain(drain) as events:
                async for drained in events:
                    got[index].append(drained)
                    if sum(map(len, got)) == total:
                        tg.cancel_scope.cancel()

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(drain_into, 0)
                tg.start_soon(drain_into, 1)
        everything = got[0] + got[1]
        assert sorted((e.stream_id, e.entry_id) for e in everything) == sorted(
            (s, i) for s, ids in sent.items() for i in ids
        )
        for one in got:  # what one consumer got of a stream is in the stream's order
            for stream_id, ids in sent.items():
                mine = [e.entry_id for e in one if e.stream_id == stream_id]
                assert mine == [i for i in ids if i in set(mine)]
    finally:
        for stream_id in [*sent, *drain.stream_ids()]:
            await backend.destroy(stream_id)


async def test_relaying_a_drained_event_does_not_copy_it_again(
    open_backend: OpenBackend, drain: DrainOptions
) -> None:
    backend = await open_backend()
    sink = StreamSink(backend, SinkOptions(drain=drain))
    session = uuid.uuid4().hex[:8]
    stream = f"session/{session}"
    shard = drain.shard_of(stream)
    try:
        first = await sink.send(event(session, 1))
        async with subscriber(backend, group="relay").subscribe_drain(drain) as events:
            (drained,) = await take(events, 1)
            again = await sink.send(drained)
        copies = await read_all(backend, shard)
        assert [decode_drain_copy(r.payload or b"").entry_id for r in copies] == [first.entry_id]
        assert again.stream_id == stream
        assert again.entry_id != first.entry_id
    finally:
        for stream_id in [stream, *drain.stream_ids()]:
            await backend.destroy(stream_id)


async def test_a_drain_connection_of_its_own_keeps_its_own_maxlen_and_reports_what_it_lost(
    redis_url: str, real: aioredis.Redis
) -> None:
    drain_backend = await RedisBackend.open(f"{redis_url}?maxlen=50")
    backend = await RedisBackend.open(f"{redis_url}?maxlen=0")
    drain = DrainOptions(prefix=f"drain-{uuid.uuid4().hex[:8]}", backend=drain_backend)
    session = uuid.uuid4().hex[:8]
    stream = f"session/{session}"
    try:
        sink = StreamSink(backend, SinkOptions(drain=drain))
        await sink.send(event(session, 0))
        async with subscriber(backend, group="d").subscribe_drain(drain) as events:
            await take(events, 1)
        await sink.send_many([event(session, n) for n in range(1, 1001)])  # the drain is down
        assert await real.xlen(KEY.format(stream)) == 1001
        kept = await real.xlen(KEY.format(f"{drain.prefix}/0"))
        assert 50 <= kept < 1001  # MAXLEN ~ trims whole nodes: about 50
        errors: list[StreamsinkError] = []
        made = subscriber(backend, group="d", on_error=errors.append)
        async with made.subscribe_drain(drain) as events:
            got = await take(events, kept)
            stats = events.statistics()
        lost = 1000 - kept
        assert got[0].gap is not None
        assert got[0].gap.count == lost
        assert stats.skipped == lost
        assert [e.gap.count for e in errors if isinstance(e, EntriesSkippedError)] == [lost]
        assert [e.payload["index"] for e in got] == list(range(lost + 1, 1001))
    finally:
        await backend.destroy(stream)
        await backend.destroy(f"{drain.prefix}/0")
        await backend.aclose()
        await drain_backend.aclose()
