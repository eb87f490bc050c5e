"""Consumer groups: splitting, start positions, pending entries, claims, nack, touch, ack, close."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis

from streamsink import ConfigurationError
from streamsink.backend import Entry, StartPosition, StreamDestroyedError
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


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (StartPosition.after("2000"), ["2000-1", "3000-0"]),
        (StartPosition.at(datetime.fromtimestamp(2, UTC)), ["2000-0", "2000-1", "3000-0"]),
        (StartPosition.at(datetime.fromtimestamp(2.001, UTC)), ["3000-0"]),
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
    """Start positions on Redis ids: ``after("<ms>")`` is ``<ms>-0``; ``at`` is inclusive (unlike
    pulse) to the millisecond of the id (the other starts: the SPI checks)."""
    for entry_id in ("1000-0", "2000-0", "2000-1", "3000-0"):
        await raw.xadd(key(stream_id), {"n": "x", "p": b"{}"}, id=entry_id)
    group = await backend.open_group_consumer(stream_id, "g", "c", start)
    assert [r.entry_id for r in await group.read_new(10, 0)] == expected
    late = await backend.append([Entry(stream_id, "late", b"{}")])
    assert [r.entry_id for r in await group.read_new(10, 0)] == late


async def test_nack_keeps_the_pel_count(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """A nack (XCLAIM IDLE … JUSTID) leaves the delivery count in the PEL alone; the claim that
    takes it raises it (that nacked entries are claimable at once: the SPI checks)."""
    c1 = await backend.open_group_consumer(stream_id, "g", "c1", OLDEST)
    c2 = await backend.open_group_consumer(stream_id, "g", "c2", OLDEST)
    ids = await append(backend, stream_id, 2)
    await c1.read_new(10, 0)
    await c1.nack([ids[0]])
    assert [p["count"] for p in await pending(raw, stream_id)] == [1, 1]
    await c2.claim_idle(60, 10)
    assert [p["count"] for p in await pending(raw, stream_id)] == [2, 1]


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


async def test_destroy_deletes_the_key(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """destroy() deletes the stream's key (what its consumers then raise: the SPI checks)."""
    consumer = await backend.open_group_consumer(stream_id, "g", "c", OLDEST)
    await append(backend, stream_id, 1)
    await backend.destroy(stream_id)
    assert await raw.exists(key(stream_id)) == 0
    with pytest.raises(StreamDestroyedError):
        await consumer.read_new(1, 0)
    await consumer.aclose()


async def test_bad_arguments_are_refused(backend: RedisBackend, stream_id: str) -> None:
    """Bad names and ids raise ConfigurationError naming them (bad counts: the SPI checks)."""
    with pytest.raises(ConfigurationError, match="group name"):
        await backend.open_group_consumer(stream_id, "", "c", OLDEST)
    with pytest.raises(ConfigurationError, match="consumer name"):
        await backend.open_group_consumer(stream_id, "g", None, OLDEST)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="entry id"):
        await backend.open_group_consumer(stream_id, "g", "c", StartPosition.after("x-y"))
    consumer = await backend.open_group_consumer(stream_id, "g", "c", OLDEST)
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
    assert backend.capabilities.claim_interval == 0.25
    assert backend.options.claim_interval_ms == 250


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
