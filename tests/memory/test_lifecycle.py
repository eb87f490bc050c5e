"""Blocking, cancellation, destroy, lost groups and closing: prompt, clean, and leak-free."""

from __future__ import annotations

import math

import anyio
import pytest

from streamsink import BackendClosedError
from streamsink.backend import GroupLostError, StartPosition
from streamsink_memory import BrokerStatistics, MemoryBackend, MemoryBroker

from .helpers import entries, ids, payloads, wait_blocked

OLDEST = StartPosition.oldest()


@pytest.mark.anyio
async def test_cancelling_a_blocked_read_is_prompt_and_leaves_no_waiter(
    backend: MemoryBackend,
) -> None:
    """Cancelling a read blocked forever returns at once and unregisters its waiter."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    reader = await backend.open_reader("s", OLDEST)
    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consumer.read_new, 10, math.inf)
            tg.start_soon(reader.read, 10, math.inf)
            await wait_blocked(backend.broker, 2)
            tg.cancel_scope.cancel()
    assert backend.broker.statistics().blocked_readers == 0
    await backend.append(entries("s", 1))
    assert payloads(await consumer.read_new(10, 0)) == [b"0"]  # the handle is still usable


@pytest.mark.anyio
async def test_dropping_a_group_wakes_its_blocked_read(backend: MemoryBackend) -> None:
    """A read blocked on a group that vanishes raises GroupLostError at once."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:

            async def read() -> None:
                with pytest.raises(GroupLostError):
                    await consumer.read_new(10, math.inf)

            tg.start_soon(read)
            await wait_blocked(backend.broker)
            backend.broker.drop_group("s", "g")


@pytest.mark.anyio
async def test_flush_loses_groups_and_ensure_group_heals(backend: MemoryBackend) -> None:
    """After a FLUSHALL-like flush, group calls raise GroupLostError (not StreamDestroyedError)
    until the group is re-created, and the stream works again."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append(entries("s", 1))
    backend.broker.flush()
    assert backend.broker.statistics() == BrokerStatistics(0, 0, 0, 0, 0, 0)
    with pytest.raises(GroupLostError):
        await consumer.read_new(10, 0)
    await consumer.ensure_group(StartPosition.newest())
    await backend.append(entries("s", 1, start=1))
    assert payloads(await consumer.read_new(10, 0)) == [b"1"]


@pytest.mark.anyio
async def test_closing_a_backend_leaves_its_broker_alive(backend: MemoryBackend) -> None:
    """A closed backend says so and its consumers leave the group, but the broker keeps the
    entries (what a closed backend refuses: the SPI checks)."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append(entries("s", 1))
    await backend.aclose()
    assert backend.closed
    with pytest.raises(BackendClosedError):
        await consumer.read_new(1, 0)
    assert backend.broker.statistics().entries == 1
    assert backend.broker.consumers("s", "g") == []


@pytest.mark.anyio
async def test_a_full_session_leaves_nothing_behind(backend: MemoryBackend) -> None:
    """Publishing, consuming, acking, closing and destroying leaves an empty broker."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    reader = await backend.open_reader("s", OLDEST)
    await backend.append(entries("s", 5))
    await consumer.ack(ids(await consumer.read_new(10, 0)))
    assert len(await reader.read(10, 0)) == 5
    await consumer.aclose()
    await reader.aclose()
    stats = backend.broker.statistics()
    assert (stats.consumers, stats.pending, stats.blocked_readers) == (0, 0, 0)
    await backend.destroy("s")
    assert backend.broker.statistics() == BrokerStatistics(0, 0, 0, 0, 0, 0)


def test_one_broker_serves_asyncio_and_trio_runs(broker: MemoryBroker) -> None:
    """A broker shared by successive asyncio and trio runs keeps working in each."""
    backend = MemoryBackend(broker)

    async def publish_then_block(expected: list[bytes]) -> None:
        consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
        await backend.append(entries("s", 1, start=len(expected) - 1))
        assert payloads(await consumer.read_new(10, 0)) == expected[-1:]
        assert await consumer.read_new(10, 0.01) == []

    anyio.run(publish_then_block, [b"0"], backend="asyncio")
    anyio.run(publish_then_block, [b"0", b"1"], backend="trio")
    anyio.run(publish_then_block, [b"0", b"1", b"2"], backend="asyncio")
    assert broker.statistics().blocked_readers == 0
