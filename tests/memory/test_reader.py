"""Fan-out readers: every reader sees every entry, acks nothing, stores nothing."""

from __future__ import annotations

import pytest

from streamsink.backend import StartPosition
from streamsink_memory import MemoryBackend

from .helpers import FakeClock, entries, payloads

OLDEST = StartPosition.oldest()


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
