"""Fan-out readers: every reader sees every entry, acks nothing, stores nothing."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import anyio
import pytest

from streamsink.backend import StartPosition
from streamsink_memory import MemoryBackend

from .helpers import FakeClock, entries, payloads, wait_blocked

OLDEST = StartPosition.oldest()


@pytest.mark.anyio
async def test_every_reader_sees_every_entry(backend: MemoryBackend) -> None:
    """Two readers on one stream both receive all entries, in order."""
    first = await backend.open_reader("s", OLDEST)
    second = await backend.open_reader("s", OLDEST)
    await backend.append(entries("s", 3))
    assert payloads(await first.read(10, 0)) == [b"0", b"1", b"2"]
    assert payloads(await second.read(2, 0)) == [b"0", b"1"]
    assert payloads(await second.read(2, 0)) == [b"2"]
    assert [r.delivery_count for r in await first.read(10, 0)] == []


@pytest.mark.anyio
async def test_readers_leave_no_state_in_the_broker(backend: MemoryBackend) -> None:
    """Opening and reading creates no stream, group, consumer or pending entry."""
    reader = await backend.open_reader("s", StartPosition.newest())
    stats = backend.broker.statistics()
    assert (stats.streams, stats.groups, stats.consumers, stats.pending) == (0, 0, 0, 0)
    await backend.append(entries("s", 2))
    records = await reader.read(10, 0)
    assert [r.delivery_count for r in records] == [1, 1]
    await reader.aclose()
    await reader.aclose()
    stats = backend.broker.statistics()
    assert (stats.groups, stats.consumers, stats.pending, stats.blocked_readers) == (0, 0, 0, 0)


@pytest.mark.anyio
async def test_a_reader_on_a_missing_stream_sees_its_first_entries(backend: MemoryBackend) -> None:
    """A reader opened before the stream exists receives everything appended later."""
    reader = await backend.open_reader("s", StartPosition.newest())
    async with anyio.create_task_group() as tg:
        got: list[bytes | None] = []

        async def read() -> None:
            got.extend(payloads(await reader.read(10, math.inf)))

        tg.start_soon(read)
        await wait_blocked(backend.broker)
        await backend.append(entries("s", 2))
    assert got == [b"0", b"1"]


@pytest.mark.anyio
async def test_reader_start_positions(backend: MemoryBackend, wall_clock: FakeClock) -> None:
    """Readers honour newest, oldest, after (exclusive) and at (inclusive)."""
    stamped = []
    for second in (1000.0, 2000.0, 3000.0):
        wall_clock.now = second
        stamped += await backend.append(entries("s", 1, start=int(second)))
    newest = await backend.open_reader("s", StartPosition.newest())
    oldest = await backend.open_reader("s", OLDEST)
    after = await backend.open_reader("s", StartPosition.after(stamped[0]))
    at = await backend.open_reader("s", StartPosition.at(datetime.fromtimestamp(2000.0, UTC)))
    wall_clock.now = 4000.0
    await backend.append(entries("s", 1, start=4000))
    assert payloads(await newest.read(10, 0)) == [b"4000"]
    assert payloads(await oldest.read(10, 0)) == [b"1000", b"2000", b"3000", b"4000"]
    assert payloads(await after.read(10, 0)) == [b"2000", b"3000", b"4000"]
    assert payloads(await at.read(10, 0)) == [b"2000", b"3000", b"4000"]


@pytest.mark.anyio
async def test_a_reader_carries_on_after_a_flush(
    backend: MemoryBackend, wall_clock: FakeClock
) -> None:
    """After a FLUSHALL-like flush a reader keeps its cursor and reads what comes next."""
    reader = await backend.open_reader("s", OLDEST)
    await backend.append(entries("s", 1))
    assert payloads(await reader.read(10, 0)) == [b"0"]
    backend.broker.flush()
    assert await reader.read(10, 0) == []
    # As on Redis, the re-created stream numbers from the wall clock again, so its ids only
    # pass the reader's cursor once the clock moved past the last id read.
    wall_clock.advance(0.001)
    await backend.append(entries("s", 1, start=1))
    assert payloads(await reader.read(10, 0)) == [b"1"]


@pytest.mark.anyio
async def test_group_and_reader_on_one_stream_are_independent(backend: MemoryBackend) -> None:
    """A reader sees the entries a group consumed, and reading does not affect the group."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    reader = await backend.open_reader("s", OLDEST)
    await backend.append(entries("s", 2))
    assert payloads(await reader.read(10, 0)) == [b"0", b"1"]
    assert payloads(await consumer.read_new(10, 0)) == [b"0", b"1"]
