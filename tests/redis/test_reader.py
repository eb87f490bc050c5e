"""Fan-out readers: every reader sees every entry, and nothing is left in Redis."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from streamsink.backend import Entry, StartPosition
from streamsink_redis import RedisBackend

pytestmark = pytest.mark.anyio


def key(stream_id: str) -> str:
    return f"pulse:stream:{stream_id}"


async def test_readers_leave_no_state(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """Readers add no group, consumer or key to Redis (that each sees every entry: the SPI
    checks)."""
    readers = [await backend.open_reader(stream_id, StartPosition.oldest()) for _ in range(2)]
    await backend.append([Entry(stream_id, f"e{i}", b"{}") for i in range(5)])
    for reader in readers:
        assert len(await reader.read(10, 0)) == 5
        await reader.aclose()
    assert await raw.keys(f"*{stream_id}*") == [key(stream_id).encode()]
    assert await raw.xinfo_groups(key(stream_id)) == []


async def test_newest_on_a_missing_stream_creates_nothing(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """A reader on a stream that does not exist yet creates no key (that it then sees the first
    entry: the SPI checks)."""
    reader = await backend.open_reader(stream_id, StartPosition.newest())
    assert await reader.read(10, 0) == []
    assert await raw.exists(key(stream_id)) == 0


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (StartPosition.after("2000"), ["2000-1", "3000-0"]),
        (StartPosition.at(datetime.fromtimestamp(2, UTC)), ["2000-0", "2000-1", "3000-0"]),
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
    """Readers start on Redis ids as groups do: ``after("<ms>")``, ``at`` inclusive to the
    millisecond (the other starts: the SPI checks)."""
    for entry_id in ("1000-0", "2000-0", "2000-1", "3000-0"):
        await raw.xadd(key(stream_id), {"n": "x", "p": b"{}"}, id=entry_id)
    reader = await backend.open_reader(stream_id, start)
    assert [r.entry_id for r in await reader.read(10, 0)] == expected
