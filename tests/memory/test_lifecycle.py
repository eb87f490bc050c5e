"""Blocking, cancellation, destroy, lost groups and closing: prompt, clean, and leak-free."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import anyio
import pytest

from streamsink._exceptions import SinkClosedError
from streamsink.backend import GroupLostError, Record, StartPosition, StreamDestroyedError
from streamsink_memory import BrokerStatistics, MemoryBackend, MemoryBroker, MemoryGroupConsumer

from .helpers import entries, ids, payloads, wait_blocked

OLDEST = StartPosition.oldest()


@pytest.mark.anyio
async def test_a_blocked_read_wakes_on_append(backend: MemoryBackend) -> None:
    """A read waiting for entries returns as soon as one is appended."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    got: list[Record] = []
    async with anyio.create_task_group() as tg:

        async def read() -> None:
            got.extend(await consumer.read_new(10, math.inf))

        tg.start_soon(read)
        await wait_blocked(backend.broker)
        await backend.append(entries("s", 2))
    assert payloads(got) == [b"0", b"1"]
    assert backend.broker.statistics().blocked_readers == 0


@pytest.mark.anyio
async def test_a_blocked_read_times_out_empty(backend: MemoryBackend) -> None:
    """A read with nothing to return waits ``block`` seconds and returns nothing."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    reader = await backend.open_reader("s", OLDEST)
    with anyio.fail_after(2):
        assert await consumer.read_new(10, 0.02) == []
        assert await reader.read(10, 0.02) == []
        assert await consumer.read_new(10, 0) == []
        assert await reader.read(10, -1) == []
    assert backend.broker.statistics().blocked_readers == 0


@pytest.mark.anyio
async def test_only_one_of_the_woken_consumers_gets_an_entry(backend: MemoryBackend) -> None:
    """Two blocked consumers of a group: one gets the entry, the other keeps waiting."""
    a = await backend.open_group_consumer("s", "g", "a", OLDEST)
    b = await backend.open_group_consumer("s", "g", "b", OLDEST)
    results: list[list[bytes | None]] = []
    async with anyio.create_task_group() as tg:

        async def read(consumer: MemoryGroupConsumer) -> None:
            results.append(payloads(await consumer.read_new(10, math.inf)))

        tg.start_soon(read, a)
        tg.start_soon(read, b)
        await wait_blocked(backend.broker, 2)
        await backend.append(entries("s", 1))
        await anyio.sleep(0.01)
        assert results == [[b"0"]]
        assert backend.broker.statistics().blocked_readers == 1
        await backend.append(entries("s", 1, start=1))
    assert sorted(results) == [[b"0"], [b"1"]]


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
async def test_a_cancelled_read_takes_nothing(backend: MemoryBackend) -> None:
    """A read cancelled before it ran leaves the entries for the next read."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append(entries("s", 1))
    with anyio.CancelScope() as scope:
        scope.cancel()
        await consumer.read_new(10, 0)
    assert backend.broker.statistics().pending == 0


@pytest.mark.anyio
async def test_destroy_wakes_blocked_reads_with_stream_destroyed(backend: MemoryBackend) -> None:
    """Group and fan-out reads blocked on a stream raise StreamDestroyedError when it goes."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    reader = await backend.open_reader("s", OLDEST)
    errors: list[BaseException] = []

    async def read(call: Callable[[], Awaitable[object]]) -> None:
        with pytest.raises(StreamDestroyedError) as info:
            await call()
        errors.append(info.value)

    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            tg.start_soon(read, lambda: consumer.read_new(10, math.inf))
            tg.start_soon(read, lambda: reader.read(10, math.inf))
            await wait_blocked(backend.broker, 2)
            await backend.destroy("s")
    assert len(errors) == 2
    assert backend.broker.statistics() == BrokerStatistics(0, 0, 0, 0, 0, 0)


@pytest.mark.anyio
async def test_handles_stay_destroyed_when_the_stream_comes_back(backend: MemoryBackend) -> None:
    """Handles opened before a destroy keep raising even after the id is used again."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    reader = await backend.open_reader("s", OLDEST)
    await backend.destroy("s")
    await backend.append(entries("s", 1))
    with pytest.raises(StreamDestroyedError):
        await consumer.read_new(10, 0)
    with pytest.raises(StreamDestroyedError):
        await consumer.ensure_group(OLDEST)
    with pytest.raises(StreamDestroyedError):
        await consumer.ack(["1-0"])
    with pytest.raises(StreamDestroyedError):
        await reader.read(10, 0)
    await consumer.aclose()
    await reader.aclose()
    fresh = await backend.open_group_consumer("s", "g", "c", OLDEST)
    assert payloads(await fresh.read_new(10, 0)) == [b"0"]


@pytest.mark.anyio
async def test_destroying_a_missing_stream_is_fine(backend: MemoryBackend) -> None:
    """``destroy`` of a stream that does not exist does nothing."""
    await backend.destroy("nope")
    assert backend.broker.statistics().streams == 0


@pytest.mark.anyio
async def test_a_dropped_group_raises_group_lost_until_re_created(backend: MemoryBackend) -> None:
    """After the group vanishes, calls raise GroupLostError; ``ensure_group`` heals them."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append(entries("s", 2))
    await consumer.read_new(1, 0)
    assert backend.broker.drop_group("s", "g")
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: consumer.read_new(10, 0),
        lambda: consumer.read_own_pending(None, 10),
        lambda: consumer.claim_idle(0, 10),
        lambda: consumer.ack(["1-0"]),
        lambda: consumer.nack(["1-0"]),
        lambda: consumer.touch(["1-0"]),
    ]
    for call in calls:
        with pytest.raises(GroupLostError):
            await call()
    await consumer.ensure_group(OLDEST)
    assert payloads(await consumer.read_new(10, 0)) == [b"0", b"1"]
    assert backend.broker.consumers("s", "g") == ["c"]


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
async def test_a_group_re_created_by_another_consumer_needs_no_healing(
    backend: MemoryBackend,
) -> None:
    """Once any consumer re-created the lost group, the others simply carry on, as on Redis."""
    a = await backend.open_group_consumer("s", "g", "a", OLDEST)
    b = await backend.open_group_consumer("s", "g", "b", OLDEST)
    backend.broker.flush()
    await a.ensure_group(OLDEST)
    await backend.append(entries("s", 1))
    assert payloads(await b.read_new(10, 0)) == [b"0"]


@pytest.mark.anyio
async def test_closing_a_backend_closes_it_and_its_handles(backend: MemoryBackend) -> None:
    """After ``aclose`` the backend and its handles raise SinkClosedError; the broker lives on."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    reader = await backend.open_reader("s", OLDEST)
    await backend.append(entries("s", 1))
    await backend.aclose()
    await backend.aclose()
    assert backend.closed
    with pytest.raises(SinkClosedError):
        await backend.append(entries("s", 1))
    with pytest.raises(SinkClosedError):
        await backend.open_group_consumer("s", "g", "c", OLDEST)
    with pytest.raises(SinkClosedError):
        await backend.open_reader("s", OLDEST)
    with pytest.raises(SinkClosedError):
        await backend.destroy("s")
    with pytest.raises(SinkClosedError):
        await consumer.read_new(1, 0)
    with pytest.raises(SinkClosedError):
        await reader.read(1, 0)
    assert backend.broker.statistics().entries == 1
    assert backend.broker.consumers("s", "g") == []


@pytest.mark.anyio
async def test_closing_wakes_blocked_reads(backend: MemoryBackend) -> None:
    """Reads blocked on a backend's handles end with SinkClosedError when it closes."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    reader = await backend.open_reader("s", OLDEST)
    closed: list[str] = []

    async def read(call: Callable[[], Awaitable[object]], name: str) -> None:
        with pytest.raises(SinkClosedError):
            await call()
        closed.append(name)

    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            tg.start_soon(read, lambda: consumer.read_new(10, math.inf), "group")
            tg.start_soon(read, lambda: reader.read(10, math.inf), "reader")
            await wait_blocked(backend.broker, 2)
            await backend.aclose()
    assert sorted(closed) == ["group", "reader"]
    assert backend.broker.statistics().blocked_readers == 0


@pytest.mark.anyio
async def test_a_closed_handle_raises_and_closing_again_is_fine(backend: MemoryBackend) -> None:
    """Calls on a closed group consumer raise SinkClosedError; ``aclose`` is idempotent."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await consumer.aclose()
    await consumer.aclose()
    with pytest.raises(SinkClosedError):
        await consumer.read_new(1, 0)
    with pytest.raises(SinkClosedError):
        await consumer.ensure_group(OLDEST)
    await backend.aclose()


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
