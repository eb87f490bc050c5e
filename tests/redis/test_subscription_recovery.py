"""A subscription on a real redis-server rides out a killed server, FLUSHALL and close, and
leaves nothing behind (issue 3's done-when, at the level an application sees)."""

from __future__ import annotations

import logging
import uuid

import anyio
import pytest
import redis.asyncio as aioredis

from streamsink import (
    BackendUnavailableError,
    StartPosition,
    StreamEvent,
    StreamSink,
    StreamsinkError,
    StreamSubscriber,
    SubscriberOptions,
)
from streamsink_redis import RedisBackend
from tests.support.redis_server import RedisServer

from .conftest import with_query

pytestmark = pytest.mark.anyio

FAST = {"socket_timeout": 1, "socket_connect_timeout": 1}


def _subscriber(backend: RedisBackend, **options: object) -> StreamSubscriber:
    options.setdefault("group", "recovery")
    options.setdefault("start", StartPosition.oldest())
    options.setdefault("ack_grace_period", 1.0)
    options.setdefault("claim_interval", 0.1)
    return StreamSubscriber(backend, SubscriberOptions(**options))  # type: ignore[arg-type]


async def test_subscription_resumes_after_the_server_is_killed(
    durable_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A SIGKILLed and restarted server (AOF on): the subscription resumes by itself, every
    acknowledged send is consumed, and the outage costs bounded retries, not a hot loop."""
    session = uuid.uuid4().hex[:10]
    errors: list[StreamsinkError] = []
    url = with_query(durable_server.url, maxlen=0, **FAST)
    sent: list[int] = []
    received: set[int] = set()
    async with await RedisBackend.open(url) as backend:
        sink = StreamSink(backend)
        subscriber = _subscriber(backend, on_error=errors.append)
        async with subscriber.subscribe(f"session/{session}") as sub:

            async def produce() -> None:
                for i in range(200):
                    if i == 80:
                        durable_server.kill()
                        await anyio.sleep(0.8)
                        durable_server.start()
                    try:
                        await sink.send(StreamEvent("tool_start", "run", session, payload=i))
                    except BackendUnavailableError:
                        continue  # not acknowledged: it may or may not be written
                    sent.append(i)
                    await anyio.sleep(0.002)
                # End the subscription once everything sent is in (checking this in the loop
                # below raced the last sends: it could stop before they were made).
                while not set(sent) <= received:  # noqa: ASYNC110 (a condition on a set)
                    await anyio.sleep(0.01)
                await sub.aclose()

            with anyio.fail_after(30):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(produce)
                    async for event in sub:
                        received.add(event.payload)
            stats = sub.statistics()
    assert set(sent) <= received, f"lost: {sorted(set(sent) - received)}"
    assert stats.retries >= 1
    outage_errors = [e for e in errors if isinstance(e, BackendUnavailableError)]
    # ~1 s of outage with backoff from 50 ms doubling: a handful of attempts, not thousands.
    assert 1 <= len(outage_errors) < 40, len(outage_errors)
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) < 60


async def test_flushall_recreates_the_group(redis_process: RedisServer) -> None:
    """After FLUSHALL the group is re-created and new events flow."""
    session = uuid.uuid4().hex[:10]
    async with await RedisBackend.open(redis_process.url) as backend:
        sink = StreamSink(backend)
        async with _subscriber(backend, on_error=lambda e: None).subscribe(
            f"session/{session}"
        ) as sub:
            await sink.send(StreamEvent("tool_start", "run", session, payload=1))
            with anyio.fail_after(5):
                assert (await sub.__anext__()).payload == 1
            raw = aioredis.Redis.from_url(redis_process.url)
            await raw.flushall()
            await raw.aclose()
            await anyio.sleep(0.3)
            await sink.send(StreamEvent("tool_start", "run", session, payload=2))
            with anyio.fail_after(5):
                assert (await sub.__anext__()).payload == 2
            assert sub.statistics().groups_recreated >= 1


@pytest.mark.parametrize("group", ["blocking", None], ids=["group", "fan-out"])
async def test_close_interrupts_a_five_second_read(redis_url: str, group: str | None) -> None:
    """Closing a subscription sitting in a 5-second blocking read returns in well under 0.5 s."""
    async with await RedisBackend.open(with_query(redis_url, block_ms=5000)) as backend:
        subscriber = _subscriber(backend, group=group, claim_interval=30.0, max_block=5.0)
        sub = subscriber.subscribe(f"session/{uuid.uuid4().hex[:10]}")
        async with sub:
            await anyio.sleep(0.3)  # the pump is now inside XREADGROUP/XREAD BLOCK 5000
            started = anyio.current_time()
        assert anyio.current_time() - started < 0.5


async def test_nothing_is_left_behind(redis_url: str) -> None:
    """Fan-out readers leave no key, group or consumer; cleanly closed group consumers leave no
    consumer (the group stays: it is the group's durable position)."""
    session = uuid.uuid4().hex[:10]
    stream = f"session/{session}"
    raw = aioredis.Redis.from_url(redis_url)
    try:
        async with await RedisBackend.open(redis_url) as backend:
            async with _subscriber(backend, group=None).subscribe(stream) as sub:
                await anyio.sleep(0.1)
            assert await raw.exists(f"pulse:stream:{stream}") == 0
            await StreamSink(backend).send(StreamEvent("tool_start", "run", session))
            async with _subscriber(backend, group=None).subscribe(stream) as sub:
                with anyio.fail_after(5):
                    await sub.__anext__()
            assert await raw.xinfo_groups(f"pulse:stream:{stream}") == []
            async with _subscriber(backend, group="drain").subscribe(stream) as sub:
                with anyio.fail_after(5):
                    await sub.__anext__()
            assert await raw.xinfo_consumers(f"pulse:stream:{stream}", "drain") == []
            await backend.destroy(stream)
        assert await raw.exists(f"pulse:stream:{stream}") == 0
    finally:
        await raw.aclose()
