"""Consumer groups: splitting, start positions, pending entries, claims, nack, touch, ack, close."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
import redis.asyncio as aioredis

from streamsink import ConfigurationError, SinkClosedError
from streamsink.backend import Entry, GroupLostError, StartPosition, StreamDestroyedError
from streamsink_redis import RedisBackend

from .conftest import OpenBackend

pytestmark = pytest.mark.anyio

OLDEST = StartPosition.oldest()


def key(stream_id: str) -> str:
    return f"pulse:stream:{stream_id}"


async def append(backend: RedisBackend, stream_id: str, n: int) -> list[str]:
    return await backend.append([Entry(stream_id, f"e{i}", b"%d" % i) for i in range(n)])


async def pending(raw: aioredis.Redis, stream_id: str, group: str = "g") -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await raw.xpending_range(key(stream_id), group, "-", "+", 100)
    return [
        {
            "id": row["message_id"].decode(),
            "consumer": row["consumer"].decode(),
            "idle": row["time_since_delivered"],
            "count": row["times_delivered"],
        }
        for row in rows
    ]


async def test_consumers_of_a_group_split_entries(backend: RedisBackend, stream_id: str) -> None:
    """Two consumers of one group each get a disjoint part, together everything."""
    c1 = await backend.open_group_consumer(stream_id, "g", "c1", OLDEST)
    c2 = await backend.open_group_consumer(stream_id, "g", "c2", OLDEST)
    ids = await append(backend, stream_id, 10)
    first = [r.entry_id for r in await c1.read_new(4, 0)]
    second = [r.entry_id for r in await c2.read_new(100, 0)]
    assert first == ids[:4]
    assert second == ids[4:]
    assert await c1.read_new(10, 0) == []


async def test_each_group_sees_every_entry(backend: RedisBackend, stream_id: str) -> None:
    """Different groups on one stream each receive every entry."""
    groups = [await backend.open_group_consumer(stream_id, g, "c", OLDEST) for g in ("a", "b")]
    ids = await append(backend, stream_id, 3)
    for consumer in groups:
        assert [r.entry_id for r in await consumer.read_new(10, 0)] == ids


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (StartPosition.oldest(), ["1000-0", "2000-0", "2000-1", "3000-0"]),
        (StartPosition.after("2000-0"), ["2000-1", "3000-0"]),
        (StartPosition.after("2000"), ["2000-1", "3000-0"]),
        (StartPosition.at(datetime.fromtimestamp(2, UTC)), ["2000-0", "2000-1", "3000-0"]),
        (StartPosition.at(datetime.fromtimestamp(2.001, UTC)), ["3000-0"]),
        (StartPosition.newest(), []),
    ],
    ids=str,
)
async def test_start_positions(
    backend: RedisBackend,
    raw: aioredis.Redis,
    stream_id: str,
    start: StartPosition,
    expected: list[str],
) -> None:
    """oldest, after (exclusive), at (inclusive, unlike pulse) and newest start where they say."""
    for entry_id in ("1000-0", "2000-0", "2000-1", "3000-0"):
        await raw.xadd(key(stream_id), {"n": "x", "p": b"{}"}, id=entry_id)
    group = await backend.open_group_consumer(stream_id, "g", "c", start)
    assert [r.entry_id for r in await group.read_new(10, 0)] == expected
    late = await backend.append([Entry(stream_id, "late", b"{}")])
    assert [r.entry_id for r in await group.read_new(10, 0)] == late


async def test_existing_group_keeps_its_position(backend: RedisBackend, stream_id: str) -> None:
    """Re-opening a group with another start does not move it (as in Redis and pulse)."""
    first = await backend.open_group_consumer(stream_id, "g", "c1", OLDEST)
    await append(backend, stream_id, 3)
    assert len(await first.read_new(10, 0)) == 3
    again = await backend.open_group_consumer(stream_id, "g", "c2", OLDEST)
    assert await again.read_new(10, 0) == []


async def test_read_new_waits_for_an_entry(backend: RedisBackend, stream_id: str) -> None:
    """A blocking read returns as soon as an entry is appended."""
    consumer = await backend.open_group_consumer(stream_id, "g", "c", StartPosition.newest())
    got: list[str] = []

    async def reader() -> None:
        got.extend(r.entry_id for r in await consumer.read_new(10, 3))

    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.sleep(0.05)
        ids = await append(backend, stream_id, 1)
    assert got == ids
    assert anyio.current_time() - start < 1.5


async def test_read_new_times_out_empty(backend: RedisBackend, stream_id: str) -> None:
    """With nothing to read, read_new returns [] after about ``block`` seconds."""
    consumer = await backend.open_group_consumer(stream_id, "g", "c", OLDEST)
    start = anyio.current_time()
    assert await consumer.read_new(10, 0.1) == []
    assert 0.08 <= anyio.current_time() - start < 1.0


async def test_delivery_counts_of_history_reads(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """``>`` reads count 1; reading own pending entries counts a new delivery, in id order."""
    consumer = await backend.open_group_consumer(stream_id, "g", "c", OLDEST)
    ids = await append(backend, stream_id, 3)
    assert [r.delivery_count for r in await consumer.read_new(10, 0)] == [1, 1, 1]
    again = await consumer.read_own_pending(None, 10)
    assert [(r.entry_id, r.delivery_count, r.name) for r in again] == [
        (ids[0], 2, "e0"),
        (ids[1], 2, "e1"),
        (ids[2], 2, "e2"),
    ]
    later = await consumer.read_own_pending(ids[0], 1)
    assert [(r.entry_id, r.delivery_count) for r in later] == [(ids[1], 3)]
    assert await consumer.read_own_pending(ids[2], 10) == []
    assert [p["count"] for p in await pending(raw, stream_id)] == [2, 3, 2]


async def test_claim_idle_moves_idle_entries_with_counts(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """Entries idle long enough move to the claimer, their delivery count incremented."""
    c1 = await backend.open_group_consumer(stream_id, "g", "c1", OLDEST)
    c2 = await backend.open_group_consumer(stream_id, "g", "c2", OLDEST)
    ids = await append(backend, stream_id, 3)
    await c1.read_new(10, 0)
    assert await c2.claim_idle(10, 10) == []
    await anyio.sleep(0.06)
    claimed = await c2.claim_idle(0.05, 10)
    assert [(r.entry_id, r.delivery_count, r.payload) for r in claimed] == [
        (ids[0], 2, b"0"),
        (ids[1], 2, b"1"),
        (ids[2], 2, b"2"),
    ]
    assert {p["consumer"] for p in await pending(raw, stream_id)} == {"c2"}


async def test_claim_pages_through_the_pending_list(backend: RedisBackend, stream_id: str) -> None:
    """Small claims page through the pending list with the cursor kept in the handle."""
    c1 = await backend.open_group_consumer(stream_id, "g", "c1", OLDEST)
    c2 = await backend.open_group_consumer(stream_id, "g", "c2", OLDEST)
    ids = await append(backend, stream_id, 5)
    await c1.read_new(10, 0)
    pages = [[r.entry_id for r in await c2.claim_idle(0, 2)] for _ in range(3)]
    assert pages == [ids[0:2], ids[2:4], ids[4:5]]
    # A full sweep is done; the next claims start over from the beginning.
    again = [r.entry_id for r in await c2.claim_idle(0, 10)]
    assert again == ids


async def test_claim_drops_trimmed_entries(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """A pending entry whose data is gone is dropped from the PEL, not returned."""
    c1 = await backend.open_group_consumer(stream_id, "g", "c1", OLDEST)
    c2 = await backend.open_group_consumer(stream_id, "g", "c2", OLDEST)
    ids = await append(backend, stream_id, 3)
    await c1.read_new(10, 0)
    await raw.xdel(key(stream_id), ids[1])
    claimed = await c2.claim_idle(0, 10)
    assert [r.entry_id for r in claimed] == [ids[0], ids[2]]
    assert [p["id"] for p in await pending(raw, stream_id)] == [ids[0], ids[2]]


async def test_nack_makes_entries_claimable_at_once(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """A nacked entry is claimable under any idle threshold; JUSTID leaves its count alone."""
    c1 = await backend.open_group_consumer(stream_id, "g", "c1", OLDEST)
    c2 = await backend.open_group_consumer(stream_id, "g", "c2", OLDEST)
    ids = await append(backend, stream_id, 2)
    await c1.read_new(10, 0)
    await c1.nack([ids[0]])
    assert [p["count"] for p in await pending(raw, stream_id)] == [1, 1]
    claimed = await c2.claim_idle(60, 10)
    assert [(r.entry_id, r.delivery_count) for r in claimed] == [(ids[0], 2)]


async def test_touch_restarts_the_idle_time(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """touch resets the idle time so a claim does not take the entry; the count is unchanged."""
    c1 = await backend.open_group_consumer(stream_id, "g", "c1", OLDEST)
    c2 = await backend.open_group_consumer(stream_id, "g", "c2", OLDEST)
    ids = await append(backend, stream_id, 1)
    await c1.read_new(10, 0)
    await anyio.sleep(1.0)
    await c1.touch(ids)
    (row,) = await pending(raw, stream_id)
    assert (row["consumer"], row["count"]) == ("c1", 1)
    # A second of idle time is gone; what is left is scheduling noise, far below it.
    assert row["idle"] < 800
    assert await c2.claim_idle(0.9, 10) == []


async def test_ack_is_idempotent_and_clears_pending(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """Acked entries leave the PEL; acking twice, unknown ids or nothing is not an error."""
    consumer = await backend.open_group_consumer(stream_id, "g", "c", OLDEST)
    ids = await append(backend, stream_id, 3)
    await consumer.read_new(10, 0)
    await consumer.ack(ids[:2])
    await consumer.ack([*ids[:2], "1-0"])
    await consumer.ack([])
    assert [p["id"] for p in await pending(raw, stream_id)] == [ids[2]]


async def test_own_pending_entries_come_back_after_a_restart(
    open_backend: OpenBackend, stream_id: str
) -> None:
    """A consumer restarted (new backend) with the same name drains its pending entries."""
    first = await open_backend()
    consumer = await first.open_group_consumer(stream_id, "g", "worker-1", OLDEST)
    ids = await append(first, stream_id, 3)
    await consumer.read_new(10, 0)
    await first.aclose()

    second = await open_backend()
    restarted = await second.open_group_consumer(stream_id, "g", "worker-1", OLDEST)
    drained = await restarted.read_own_pending(None, 10)
    assert [(r.entry_id, r.delivery_count) for r in drained] == [(i, 2) for i in ids]
    assert await restarted.read_new(10, 0) == []


async def test_close_deletes_the_consumer_only_without_pending(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """aclose removes an idle consumer from the group but keeps one that owns entries."""
    idle = await backend.open_group_consumer(stream_id, "g", "idle", OLDEST)
    busy = await backend.open_group_consumer(stream_id, "g", "busy", OLDEST)
    done = await backend.open_group_consumer(stream_id, "g", "done", OLDEST)
    ids = await append(backend, stream_id, 2)
    await busy.read_new(1, 0)
    await done.read_new(1, 0)
    await done.ack([ids[1]])
    await idle.read_new(1, 0)  # nothing left: registers the consumer without entries
    for consumer in (idle, busy, done):
        await consumer.aclose()
        await consumer.aclose()
    names = {c["name"].decode() for c in await raw.xinfo_consumers(key(stream_id), "g")}
    assert names == {"busy"}


async def test_lost_group_raises_from_every_call_until_recreated(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """A group deleted behind the backend's back raises GroupLostError; ensure_group heals."""
    consumer = await backend.open_group_consumer(stream_id, "g", "c", OLDEST)
    ids = await append(backend, stream_id, 1)
    await raw.delete(key(stream_id))
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: consumer.read_new(10, 0),
        lambda: consumer.read_new(10, 0.05),
        lambda: consumer.read_own_pending(None, 10),
        lambda: consumer.claim_idle(0, 10),
        lambda: consumer.ack(ids),
        lambda: consumer.nack(ids),
        lambda: consumer.touch(ids),
    ]
    for call in calls:
        with pytest.raises(GroupLostError):
            await call()
    await consumer.ensure_group(OLDEST)
    await consumer.ensure_group(OLDEST)  # BUSYGROUP is fine
    new = await append(backend, stream_id, 1)
    assert [r.entry_id for r in await consumer.read_new(10, 0)] == new


async def test_read_own_pending_skips_trimmed_entries(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """Own pending entries whose data was trimmed are dropped, even across a whole batch."""
    consumer = await backend.open_group_consumer(stream_id, "g", "c", OLDEST)
    ids = await append(backend, stream_id, 5)
    await consumer.read_new(10, 0)
    await raw.xdel(key(stream_id), *ids[:3])
    drained = await consumer.read_own_pending(None, 2)
    assert [r.entry_id for r in drained] == [ids[3]]
    assert [p["id"] for p in await pending(raw, stream_id)] == ids[3:]


async def test_destroy_ends_consumers_of_this_backend(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """After destroy() the stream is gone and its consumers raise StreamDestroyedError."""
    consumer = await backend.open_group_consumer(stream_id, "g", "c", OLDEST)
    await append(backend, stream_id, 1)
    await backend.destroy(stream_id)
    await backend.destroy(stream_id)  # destroying a missing stream is fine
    assert await raw.exists(key(stream_id)) == 0
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: consumer.read_new(1, 0),
        lambda: consumer.ack(["1-0"]),
        lambda: consumer.ensure_group(OLDEST),
    ]
    for call in calls:
        with pytest.raises(StreamDestroyedError):
            await call()
    await consumer.aclose()
    fresh = await backend.open_group_consumer(stream_id, "g", "c", OLDEST)
    assert [r.entry_id for r in await fresh.read_new(1, 0)] == []


async def test_destroy_interrupts_a_blocked_read(backend: RedisBackend, stream_id: str) -> None:
    """A consumer blocked in read_new ends at once with StreamDestroyedError on destroy."""
    consumer = await backend.open_group_consumer(stream_id, "g", "c", OLDEST)
    reader = await backend.open_reader(stream_id, OLDEST)
    errors: list[BaseException] = []

    async def blocked(call: Any) -> None:
        try:
            await call
        except StreamDestroyedError as exc:
            errors.append(exc)

    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        tg.start_soon(blocked, consumer.read_new(10, 5))
        tg.start_soon(blocked, reader.read(10, 5))
        await anyio.sleep(0.1)
        await backend.destroy(stream_id)
    assert len(errors) == 2
    assert anyio.current_time() - start < 0.6


async def test_closed_consumer_refuses_calls(backend: RedisBackend, stream_id: str) -> None:
    """After aclose every call raises SinkClosedError."""
    consumer = await backend.open_group_consumer(stream_id, "g", "c", OLDEST)
    await consumer.aclose()
    with pytest.raises(SinkClosedError):
        await consumer.read_new(1, 0)
    with pytest.raises(SinkClosedError):
        await consumer.ack(["1-0"])


async def test_bad_arguments_are_refused(backend: RedisBackend, stream_id: str) -> None:
    """Bad names, counts and ids raise ConfigurationError."""
    with pytest.raises(ConfigurationError, match="group name"):
        await backend.open_group_consumer(stream_id, "", "c", OLDEST)
    with pytest.raises(ConfigurationError, match="consumer name"):
        await backend.open_group_consumer(stream_id, "g", None, OLDEST)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="entry id"):
        await backend.open_group_consumer(stream_id, "g", "c", StartPosition.after("x-y"))
    consumer = await backend.open_group_consumer(stream_id, "g", "c", OLDEST)
    with pytest.raises(ConfigurationError, match="count"):
        await consumer.read_new(0, 0)
    with pytest.raises(ConfigurationError, match="entry id"):
        await consumer.read_own_pending("nope", 10)


async def test_count_is_capped_by_the_count_option(
    open_backend: OpenBackend, stream_id: str
) -> None:
    """One read never fetches more than the ``count`` option."""
    backend = await open_backend(count=2)
    consumer = await backend.open_group_consumer(stream_id, "g", "c", OLDEST)
    await append(backend, stream_id, 5)
    assert len(await consumer.read_new(100, 0)) == 2


async def test_failed_open_leaves_nothing_open(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """Opening a group on a key of another type fails with ConfigurationError and leaks nothing."""
    await raw.set(key(stream_id), "not a stream")
    try:
        with pytest.raises(ConfigurationError, match="WRONGTYPE"):
            await backend.open_group_consumer(stream_id, "g", "c", OLDEST)
        assert backend._handles == {}
    finally:
        await raw.delete(key(stream_id))  # the leak check allows streams only


async def test_backend_suggests_its_claim_interval(open_backend: OpenBackend) -> None:
    """The backend tells the core how often to claim (claim_interval_ms, in seconds)."""
    backend = await open_backend(claim_interval_ms=250)
    assert backend.claim_interval == 0.25
    assert backend.options.claim_interval_ms == 250


async def test_touch_leaves_entries_another_consumer_claimed(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """touch renews only what this consumer still owns: an entry another consumer claimed
    meanwhile stays that consumer's (a plain XCLAIM would take it back)."""
    c1 = await backend.open_group_consumer(stream_id, "g", "c1", OLDEST)
    c2 = await backend.open_group_consumer(stream_id, "g", "c2", OLDEST)
    ids = await append(backend, stream_id, 2)
    await c1.read_new(10, 0)
    await c2.nack(ids[:1])
    (claimed,) = await c2.claim_idle(0, 1)
    assert claimed.entry_id == ids[0]
    await c1.touch(ids)
    rows = await pending(raw, stream_id)
    assert [(row["id"], row["consumer"], row["count"]) for row in rows] == [
        (ids[0], "c2", 2),
        (ids[1], "c1", 1),
    ]


async def test_groups_are_created_with_their_position(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """A new group's read counter is set (Redis leaves it unknown for $, 0 and ids), so what
    trimming takes from it can be counted: newest counts everything so far as read, oldest and
    a time start what was trimmed before it, after(id) what is up to the id."""
    trimmed = await backend.open_group_consumer(stream_id, "pre", "c", OLDEST)  # makes the stream
    ids = await append(backend, stream_id, 5)
    await raw.xtrim(key(stream_id), maxlen=3, approximate=False)  # ids[0:2] are gone
    starts = {
        "newest": StartPosition.newest(),
        "oldest": OLDEST,
        "at": StartPosition.at(datetime(2000, 1, 1, tzinfo=UTC)),
        "after": StartPosition.after(ids[3]),
        "resume": StartPosition.after(ids[0]),
    }
    for name, start in starts.items():
        await backend.open_group_consumer(stream_id, name, "c", start)
    groups = {
        row["name"].decode(): row["entries-read"] for row in await raw.xinfo_groups(key(stream_id))
    }
    assert groups == {"pre": 0, "newest": 5, "oldest": 2, "at": 2, "after": 4, "resume": None}
    await trimmed.aclose()


async def test_joining_an_existing_group_writes_nothing(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str, url: str
) -> None:
    """Opening a consumer of a group that exists runs no write command (Redis refuses writes
    when it is out of memory, XGROUP CREATE of an existing group included)."""
    if url.startswith("fakeredis://"):
        pytest.skip("fakeredis keeps no command statistics (the real server runs this test)")
    await backend.open_group_consumer(stream_id, "g", "c1", OLDEST)
    before = await raw.info("commandstats")
    await backend.open_group_consumer(stream_id, "g", "c2", OLDEST)
    after = await raw.info("commandstats")
    creates = [
        name
        for name in after
        if "xgroup" in name and after[name]["calls"] != before.get(name, {}).get("calls")
    ]
    assert creates == []
