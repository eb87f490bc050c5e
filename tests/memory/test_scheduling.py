"""When the memory backend yields to the event loop: appends every ``yield_every`` calls, and
group reads that gather a batch while a writer goes on (on asyncio and on trio)."""

from __future__ import annotations

from itertools import pairwise

import anyio
import pytest
from anyio.lowlevel import checkpoint

from streamsink.backend import Record, StartPosition
from streamsink_memory import MemoryBackend, MemoryBroker, MemoryGroupConsumer, MemoryOptions

from .helpers import entries, payloads

OLDEST = StartPosition.oldest()


@pytest.mark.anyio
@pytest.mark.parametrize("yield_every", [1, 4, 16])
async def test_a_tight_producer_lets_other_tasks_run_every_yield_every_appends(
    broker: MemoryBroker, yield_every: int
) -> None:
    """Between two passes of another task, a producer appending in a loop adds a bounded
    number of entries (``yield_every``; twice that on trio, which may run the producer last
    in one batch of runnable tasks and first in the next); and it does yield that often."""
    backend = MemoryBackend(broker, options=MemoryOptions(maxlen=0, yield_every=yield_every))
    total = 64
    seen: list[int] = []
    done = False

    async def observe() -> None:
        while not done:
            seen.append(broker.statistics().entries)
            await checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(observe)
        await checkpoint()  # the observer has started
        for i in range(total):
            await backend.append(entries("s", 1, start=i))
        done = True
    steps = [after - before for before, after in pairwise(seen)]
    assert max(steps) <= 2 * yield_every
    assert len(seen) >= total // yield_every


@pytest.mark.anyio
async def test_a_cancelled_producer_stops_within_yield_every_appends(
    broker: MemoryBroker,
) -> None:
    """In a cancelled scope the ``yield_every``-th append raises and writes nothing; the ones
    before it, which take no checkpoint, are written."""
    backend = MemoryBackend(broker, options=MemoryOptions(maxlen=0, yield_every=4))
    written = 0
    with anyio.CancelScope() as scope:
        scope.cancel()
        for i in range(10):
            await backend.append(entries("s", 1, start=i))
            written += 1
    assert written == 3
    assert broker.statistics().entries == 3


@pytest.mark.anyio
async def test_with_yield_every_1_each_append_is_a_checkpoint(broker: MemoryBroker) -> None:
    """``yield_every=1``: an append in a cancelled scope raises before writing anything."""
    backend = MemoryBackend(broker, options=MemoryOptions(maxlen=0, yield_every=1))
    with anyio.CancelScope() as scope:
        scope.cancel()
        await backend.append(entries("s", 1))
    assert scope.cancelled_caught
    assert broker.statistics().entries == 0


async def _write_one_per_pass(backend: MemoryBackend, count: int, start: int) -> None:
    """With ``yield_every=1`` each append is one pass of the event loop."""
    for i in range(start, start + count):
        await backend.append(entries("s", 1, start=i))


async def _read_behind_a_writer(
    broker: MemoryBroker, more: int, count: int
) -> tuple[list[Record], MemoryGroupConsumer]:
    """One entry waits; while a writer appends ``more`` (one per pass), a blocking group read
    of up to ``count`` runs. Returns what it read, and the consumer."""
    backend = MemoryBackend(broker, options=MemoryOptions(maxlen=0, yield_every=1))
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append(entries("s", 1))
    async with anyio.create_task_group() as tg:
        tg.start_soon(_write_one_per_pass, backend, more, 1)
        first = await consumer.read_new(count, 5)
    return first, consumer


@pytest.mark.anyio
async def test_a_reader_behind_a_busy_writer_takes_a_batch(broker: MemoryBroker) -> None:
    """A group read finding fewer entries than it may take waits while a writer keeps
    appending (one entry per pass here), then takes them in one batch."""
    first, consumer = await _read_behind_a_writer(broker, 49, 100)
    rest = await consumer.read_new(100, 0)
    assert len(first) >= 40  # not one entry per read
    assert payloads(first + rest) == [str(i).encode() for i in range(50)]


@pytest.mark.anyio
async def test_a_gathering_read_stops_at_count(broker: MemoryBroker) -> None:
    """A gathering read returns as soon as ``count`` entries wait, while the writer goes on."""
    first, _consumer = await _read_behind_a_writer(broker, 99, 10)
    assert payloads(first) == [str(i).encode() for i in range(10)]


@pytest.mark.anyio
async def test_a_read_with_nobody_writing_returns_what_waits_at_once(
    backend: MemoryBackend,
) -> None:
    """Entries waiting and no writer: a blocking read returns them without waiting out its
    ``block`` time."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append(entries("s", 3))
    with anyio.fail_after(1):
        records = await consumer.read_new(100, 60)
    assert payloads(records) == [b"0", b"1", b"2"]


@pytest.mark.anyio
async def test_cancelling_a_gathering_read_takes_nothing_and_leaves_nothing(
    broker: MemoryBroker,
) -> None:
    """A read cancelled while it gathers delivers nothing to the group and leaves no waiter;
    the next read gets every entry."""
    backend = MemoryBackend(broker, options=MemoryOptions(maxlen=0, yield_every=1))
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append(entries("s", 1))

    async def read_then_cancel(scope: anyio.CancelScope) -> None:
        with scope:
            await consumer.read_new(100, 5)

    async with anyio.create_task_group() as tg:
        scope = anyio.CancelScope()
        tg.start_soon(read_then_cancel, scope)
        await _write_one_per_pass(backend, 5, 1)
        scope.cancel()
    assert scope.cancelled_caught
    statistics = broker.statistics()
    assert (statistics.pending, statistics.blocked_readers) == (0, 0)
    assert len(await consumer.read_new(100, 0)) == 6
