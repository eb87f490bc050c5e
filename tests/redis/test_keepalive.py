"""pulse's keep-alive protocol, ownership in claims, and deletion reports (real Redis only:
fakeredis has no Lua ``struct`` library)."""

from __future__ import annotations

import time
import uuid

import anyio
import pytest
import redis.asyncio as aioredis

from streamsink import ConfigurationError, ConsumerDeletedError
from streamsink.backend import Entry, GroupConsumer, StartPosition
from streamsink_redis import RedisBackend
from streamsink_redis._options import RedisOptions
from tests.support.pulse_sink import Replica

from .conftest import OpenBackend

pytestmark = [pytest.mark.redis, pytest.mark.anyio]

OLDEST = StartPosition.oldest()
GROUP = "loom_mcp_subscriber"
KEEPALIVE = f"map:sink:{GROUP}:keepalive:content"


@pytest.fixture
def url(redis_url: str) -> str:
    """The real server only."""
    return redis_url


def key(stream_id: str) -> str:
    return f"pulse:stream:{stream_id}"


def consumers_map(stream_id: str) -> str:
    return f"map:stream:{stream_id}:sinks:content"


async def append(backend: RedisBackend, stream_id: str, n: int) -> list[str]:
    return await backend.append([Entry(stream_id, f"e{i}", b"%d" % i) for i in range(n)])


async def test_join_writes_pulse_keepalive_and_publishes_it(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """The keep-alive is pulse's: the consumer's field in the sink's keep-alive map holds unix
    nanoseconds, the stream's consumers map lists it under the group (a JSON array), both with
    ``=rev``/``=kind``, and a pulse replica applies the published changes."""
    keepalives = Replica(raw, f"sink:{GROUP}:keepalive")
    await keepalives.join()
    try:
        before = time.time_ns()
        consumer = await backend.open_group_consumer(stream_id, GROUP, "c1", OLDEST)
        after = time.time_ns()
        stored = {k.decode(): v.decode() for k, v in (await raw.hgetall(KEEPALIVE)).items()}
        assert before <= int(stored["c1"]) <= after
        assert stored["=kind"] == "set"
        assert int(stored["=rev"]) >= 1
        assert await raw.hget(consumers_map(stream_id), GROUP) == b'["c1"]'
        message = await keepalives._pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
        assert message is not None
        keepalives._apply(message["data"])
        assert keepalives.content == {"c1": stored["c1"]}
        assert keepalives.rev == int(stored["=rev"])
    finally:
        # The replica goes first: a map a replica still follows is kept (pulse's rule), and no
        # later test of this server's session would remove it.
        await keepalives.leave()
    await consumer.aclose()


async def _read_until(consumer: GroupConsumer, stop: anyio.Event) -> None:
    """An idle subscription's pump: blocking reads, one after another."""
    while not stop.is_set():
        await consumer.read_new(10, 0.05)


async def test_a_group_refresh_is_what_pulse_replicas_apply(
    backend: RedisBackend, raw: aioredis.Redis
) -> None:
    """Consumers of a group on several streams are refreshed together: every consumer's entry
    is rewritten each grace period, each with a message of its own whose revision a replica
    applies, so the replica's copy is the hash, whichever consumer's call ran the script."""
    grace = 0.2
    keepalives = Replica(raw, f"sink:{GROUP}:keepalive")
    await keepalives.join()
    streams = [f"test/{uuid.uuid4().hex[:12]}" for _ in range(3)]
    consumers = [
        await backend.open_group_consumer(s, GROUP, f"c{i}", OLDEST, ack_grace_period=grace)
        for i, s in enumerate(streams)
    ]
    joined = {k.decode(): int(v) for k, v in (await raw.hgetall(KEEPALIVE)).items()
              if not k.startswith(b"=")}  # fmt: skip
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(keepalives.follow)
            stop = anyio.Event()
            async with anyio.create_task_group() as reads:
                for consumer in consumers:
                    reads.start_soon(_read_until, consumer, stop)
                await anyio.sleep(3.5 * grace)
                stop.set()
            await anyio.sleep(0.1)  # the last messages reach the replica
            tasks.cancel_scope.cancel()
        stored = {k.decode(): v.decode() for k, v in (await raw.hgetall(KEEPALIVE)).items()}
        assert keepalives.invalid_messages == 0
        assert keepalives.rev == int(stored.pop("=rev"))
        assert stored.pop("=kind") == "set"
        assert keepalives.content == stored
        assert sorted(stored) == ["c0", "c1", "c2"]
        assert all(int(stored[name]) > joined[name] for name in stored)
        # 3 joins, then one message per consumer and refresh (3 refreshes, give or take one).
        assert 3 + 3 * 2 <= keepalives.applied <= 3 + 3 * 4
    finally:
        await keepalives.leave()  # first, as above
        for consumer in consumers:
            await consumer.aclose()


async def test_a_consumer_that_neither_reads_nor_calls_is_not_refreshed(
    backend: RedisBackend, raw: aioredis.Redis
) -> None:
    """A group's refresh writes the keep-alives of its live consumers only: one whose
    application is stuck (no read, no call for a grace period) lapses, as it would alone."""
    grace = 0.2
    working, stuck = [
        await backend.open_group_consumer(
            f"test/{uuid.uuid4().hex[:12]}", GROUP, name, OLDEST, ack_grace_period=grace
        )
        for name in ("working", "stuck")
    ]

    async def written() -> tuple[int, int]:
        values = await raw.hmget(KEEPALIVE, ["working", "stuck"])
        return int(values[0] or 0), int(values[1] or 0)

    stop = anyio.Event()
    async with anyio.create_task_group() as reads:
        reads.start_soon(_read_until, working, stop)
        await anyio.sleep(2 * grace)  # past a refresh that may still find it live
        before = await written()
        await anyio.sleep(2 * grace)
        after = await written()
        stop.set()
    assert after[1] == before[1] > 0  # lapsing
    assert after[0] > before[0]  # refreshed
    await working.aclose()
    await stuck.aclose()


async def test_a_group_refresh_does_not_bring_back_a_consumer_that_left(
    backend: RedisBackend, raw: aioredis.Redis
) -> None:
    """A consumer whose leave ran while a refresh of its group was on its way (its registry
    entry and keep-alive gone) is skipped by that refresh, not registered again."""
    grace = 0.05
    stream_ids = [f"test/{uuid.uuid4().hex[:12]}" for _ in range(2)]
    staying, leaving = [
        await backend.open_group_consumer(s, GROUP, name, OLDEST, ack_grace_period=grace)
        for s, name in zip(stream_ids, ("staying", "leaving"), strict=True)
    ]
    registry = f"streamsink:sink:{GROUP}:consumers"
    await raw.hdel(registry, "leaving")  # what its LEAVE does, the group not told yet
    await raw.hdel(KEEPALIVE, "leaving")
    await raw.delete(consumers_map(stream_ids[1]))
    before = int(await raw.hget(KEEPALIVE, "staying") or 0)
    stop = anyio.Event()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(_read_until, staying, stop)  # live: an idle pump's reads
        await anyio.sleep(2 * grace)
        await leaving.read_new(10, 0)  # live too, but in the group's list only
        await anyio.sleep(2 * grace)
        stop.set()
    assert int(await raw.hget(KEEPALIVE, "staying") or 0) > before
    assert not await raw.hexists(KEEPALIVE, "leaving")
    assert not await raw.hexists(registry, "leaving")
    assert not await raw.exists(consumers_map(stream_ids[1]))
    await staying.aclose()
    await leaving.aclose()


async def test_close_holding_nothing_removes_everything(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    consumer = await backend.open_group_consumer(stream_id, GROUP, "c1", OLDEST)
    await append(backend, stream_id, 2)
    records = await consumer.read_new(10, 0)
    await consumer.ack([r.entry_id for r in records])
    await consumer.aclose()
    assert await raw.xinfo_consumers(key(stream_id), GROUP) == []
    assert not await raw.exists(
        KEEPALIVE, consumers_map(stream_id), f"streamsink:sink:{GROUP}:consumers"
    )


async def test_close_holding_entries_stays_with_its_keepalive(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """Like pulse's Close: the consumer, its entries and its keep-alive stay for a claim."""
    consumer = await backend.open_group_consumer(stream_id, GROUP, "c1", OLDEST)
    await append(backend, stream_id, 2)
    assert len(await consumer.read_new(10, 0)) == 2
    await consumer.aclose()
    infos = await raw.xinfo_consumers(key(stream_id), GROUP)
    assert [(i["name"], i["pending"]) for i in infos] == [(b"c1", 2)]
    assert await raw.hexists(KEEPALIVE, "c1")
    await raw.xgroup_delconsumer(key(stream_id), GROUP, "c1")
    await raw.delete(KEEPALIVE, consumers_map(stream_id), f"streamsink:sink:{GROUP}:consumers")


async def _pulse_holds(raw: aioredis.Redis, stream_id: str, keepalive_ns: int) -> None:
    """A pulse consumer "p1" reads every entry and has the given keep-alive."""
    await raw.hset(KEEPALIVE, "p1", str(keepalive_ns))
    await raw.xreadgroup(GROUP, "p1", {key(stream_id): ">"})


async def test_claims_leave_a_live_pulse_consumer_alone(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    consumer = await backend.open_group_consumer(stream_id, GROUP, "c1", OLDEST)
    await append(backend, stream_id, 3)
    await _pulse_holds(raw, stream_id, time.time_ns())
    assert await consumer.claim_idle(0.0, 10) == []  # idle for 0 s: everything qualifies
    await consumer.aclose()
    await raw.delete(KEEPALIVE)


async def test_claims_from_a_dead_pulse_consumer_count_pulse_as_one_delivery(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    consumer = await backend.open_group_consumer(stream_id, GROUP, "c1", OLDEST)
    await append(backend, stream_id, 3)
    await _pulse_holds(raw, stream_id, time.time_ns() - 3600 * 10**9)  # an hour old: stale
    for _ in range(3):  # pulse's own claims raised Redis's count
        await raw.xclaim(key(stream_id), GROUP, "p1", 0, [r["message_id"] for r in
                         await raw.xpending_range(key(stream_id), GROUP, "-", "+", 10)])  # fmt: skip
    records = await consumer.claim_idle(0.0, 10)
    assert [r.delivery_count for r in records] == [2, 2, 2]
    await consumer.ack([r.entry_id for r in records])
    await consumer.aclose()
    await raw.xgroup_delconsumer(key(stream_id), GROUP, "p1")
    await raw.delete(KEEPALIVE)


@pytest.mark.parametrize("keepalive", ["true", "false"])
async def test_a_deletion_is_reported_once(
    open_backend: OpenBackend, raw: aioredis.Redis, stream_id: str, keepalive: str
) -> None:
    backend = await open_backend(pulse_keepalive=keepalive)
    consumer = await backend.open_group_consumer(stream_id, GROUP, "c1", OLDEST)
    await append(backend, stream_id, 2)
    assert len(await consumer.read_new(10, 0)) == 2
    assert await raw.xgroup_delconsumer(key(stream_id), GROUP, "c1") == 2  # both dropped
    await consumer.read_new(10, 0.01)  # the listing sent with the read notices it
    with pytest.raises(ConsumerDeletedError) as caught:
        await consumer.claim_idle(1.0, 10)  # the error waits for the next call
    error = caught.value
    assert (error.stream_id, error.group, error.consumer) == (stream_id, GROUP, "c1")
    assert "pulse_keepalive" in str(error)
    assert await consumer.claim_idle(1.0, 10) == []  # reported once; the call proceeds
    await consumer.aclose()


@pytest.mark.parametrize("keepalive", ["true", "false"])
async def test_empty_reads_and_claims_are_no_deletion(
    open_backend: OpenBackend, raw: aioredis.Redis, stream_id: str, keepalive: str
) -> None:
    """Redis 7.0 creates a consumer only when a read or claim gives it entries (an empty
    XREADGROUP ... > or XAUTOCLAIM leaves it out of XINFO CONSUMERS): a consumer that has not
    been given anything yet is not reported deleted, however its calls interleave."""
    backend = await open_backend(pulse_keepalive=keepalive)
    consumer = await backend.open_group_consumer(stream_id, GROUP, "idle", OLDEST)
    for _ in range(3):
        assert await consumer.read_new(10, 0) == []
        assert await consumer.claim_idle(0.001, 10) == []
        assert await consumer.read_new(10, 0.01) == []  # the blocking path, listing in front
    await append(backend, stream_id, 1)
    assert len(await consumer.read_new(10, 0)) == 1
    assert await consumer.claim_idle(60.0, 10) == []
    assert await consumer.read_new(10, 0.01) == []
    await consumer.aclose()


def test_keepalive_option() -> None:
    assert RedisOptions().keepalive_on(fake=False)
    assert not RedisOptions().keepalive_on(fake=True)
    assert not RedisOptions(key_prefix="app:").keepalive_on(fake=False)
    assert RedisOptions(key_prefix="app:", pulse_keepalive=True).keepalive_on(fake=False)
    with pytest.raises(ConfigurationError, match=r"pulse_keepalive=True.*false on fakeredis"):
        RedisOptions.from_query({"pulse_keepalive": "true"}, scheme="fakeredis")
    with pytest.raises(ConfigurationError, match="pulse_keepalive='yes'"):
        RedisOptions(pulse_keepalive="yes")  # type: ignore[arg-type]
