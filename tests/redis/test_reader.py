"""Fan-out readers: every reader sees every entry, and nothing is left in Redis."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import pytest
import redis.asyncio as aioredis

from streamsink import SinkClosedError
from streamsink.backend import Entry, StartPosition
from streamsink_redis import RedisBackend

pytestmark = pytest.mark.anyio


def key(stream_id: str) -> str:
    return f"pulse:stream:{stream_id}"


async def test_readers_fan_out_and_leave_no_state(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """Two readers each see every entry; no group, consumer or extra key appears in Redis."""
    readers = [await backend.open_reader(stream_id, StartPosition.oldest()) for _ in range(2)]
    ids = await backend.append([Entry(stream_id, f"e{i}", b"{}") for i in range(5)])
    for reader in readers:
        assert [r.entry_id for r in await reader.read(3, 0)] == ids[:3]
        assert [r.entry_id for r in await reader.read(10, 0)] == ids[3:]
        assert await reader.read(10, 0) == []
        await reader.aclose()
        await reader.aclose()
    assert await raw.keys(f"*{stream_id}*") == [key(stream_id).encode()]
    assert await raw.xinfo_groups(key(stream_id)) == []


async def test_newest_is_resolved_when_the_reader_opens(
    backend: RedisBackend, stream_id: str
) -> None:
    """An entry appended after open_reader(newest) but before the first read is not missed."""
    await backend.append([Entry(stream_id, "before", b"{}")])
    reader = await backend.open_reader(stream_id, StartPosition.newest())
    after = await backend.append([Entry(stream_id, "after", b"{}")])
    assert [r.entry_id for r in await reader.read(10, 0)] == after


async def test_newest_on_a_missing_stream_creates_nothing(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """A reader on a stream that does not exist yet creates no key and sees the first entry."""
    reader = await backend.open_reader(stream_id, StartPosition.newest())
    assert await reader.read(10, 0) == []
    assert await raw.exists(key(stream_id)) == 0
    first = await backend.append([Entry(stream_id, "first", b"{}")])
    assert [r.entry_id for r in await reader.read(10, 0)] == first


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (StartPosition.oldest(), ["1000-0", "2000-0", "2000-1", "3000-0"]),
        (StartPosition.after("2000-0"), ["2000-1", "3000-0"]),
        (StartPosition.at(datetime.fromtimestamp(2, UTC)), ["2000-0", "2000-1", "3000-0"]),
        (StartPosition.newest(), []),
    ],
    ids=str,
)
async def test_reader_start_positions(
    backend: RedisBackend,
    raw: aioredis.Redis,
    stream_id: str,
    start: StartPosition,
    expected: list[str],
) -> None:
    """Readers start where groups do: oldest, after (exclusive), at (inclusive), newest."""
    for entry_id in ("1000-0", "2000-0", "2000-1", "3000-0"):
        await raw.xadd(key(stream_id), {"n": "x", "p": b"{}"}, id=entry_id)
    reader = await backend.open_reader(stream_id, start)
    assert [r.entry_id for r in await reader.read(10, 0)] == expected


async def test_reader_waits_for_an_entry(backend: RedisBackend, stream_id: str) -> None:
    """A blocking read returns as soon as an entry is appended."""
    reader = await backend.open_reader(stream_id, StartPosition.newest())
    got: list[str] = []

    async def read() -> None:
        got.extend(r.entry_id for r in await reader.read(10, 3))

    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        tg.start_soon(read)
        await anyio.sleep(0.05)
        ids = await backend.append([Entry(stream_id, "x", b"{}")])
    assert got == ids
    assert anyio.current_time() - start < 1.5


async def test_closed_reader_refuses_reads(backend: RedisBackend, stream_id: str) -> None:
    """After aclose a read raises SinkClosedError."""
    reader = await backend.open_reader(stream_id, StartPosition.oldest())
    await reader.aclose()
    with pytest.raises(SinkClosedError):
        await reader.read(1, 0)
