"""FaultyBackend: failures and delays injected into chosen SPI calls of any backend."""

from __future__ import annotations

import anyio
import pytest

from streamsink import BackendUnavailableError, StartPosition
from streamsink.backend import Entry, GroupLostError, StreamDestroyedError
from streamsink.testing import FaultyBackend, FaultyCall
from streamsink_memory import MemoryBackend

pytestmark = pytest.mark.anyio

OLDEST = StartPosition.oldest()


def _entries(stream: str, n: int) -> list[Entry]:
    return [Entry(stream, "e", b"%d" % i) for i in range(n)]


async def test_without_faults_every_call_goes_through() -> None:
    async with FaultyBackend(MemoryBackend()) as backend:
        ids = await backend.append(_entries("s", 2))
        consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
        assert consumer.consumer == "c"
        assert [r.entry_id for r in await consumer.read_new(10, 0)] == ids
        await consumer.ack(ids)
        reader = await backend.open_reader("s", OLDEST)
        assert len(await reader.read(10, 0)) == 2
        assert backend.capabilities == backend.inner.capabilities
        assert backend.description.startswith("faulty ")
        assert [c.method for c in backend.calls] == [
            "append", "open_group_consumer", "read_new", "ack", "open_reader", "read"
        ]  # fmt: skip
        assert {c.outcome for c in backend.calls} == {"ok"}


async def test_the_next_n_calls_fail_then_calls_go_through() -> None:
    async with FaultyBackend(MemoryBackend()) as backend:
        backend.fail("append", times=2)
        for _ in range(2):
            with pytest.raises(BackendUnavailableError, match="append on 's': failure injected"):
                await backend.append(_entries("s", 1))
        await backend.append(_entries("s", 1))
        assert (backend.count("append", "failed"), backend.count("append", "ok")) == (2, 1)
        assert len(await (await backend.open_reader("s", OLDEST)).read(10, 0)) == 1


async def test_errors_may_be_classes_or_instances_and_target_one_stream() -> None:
    async with FaultyBackend(MemoryBackend()) as backend:
        consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
        other = await backend.open_group_consumer("t", "g", "c", OLDEST)
        backend.fail("read_new", error=GroupLostError, stream_id="s")
        gone = StreamDestroyedError("gone")
        backend.fail("ack", error=gone)
        assert await other.read_new(10, 0) == []
        with pytest.raises(GroupLostError):
            await consumer.read_new(10, 0)
        with pytest.raises(StreamDestroyedError) as info:
            await consumer.ack(["1-0"])
        assert info.value is gone
        assert await consumer.read_new(10, 0) == []


async def test_a_lost_reply_did_the_work() -> None:
    """lose_reply: the entries were read (pending for the consumer), the caller got an error."""
    async with FaultyBackend(MemoryBackend()) as backend:
        ids = await backend.append(_entries("s", 2))
        consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
        backend.fail("read_new", lose_reply=True)
        with pytest.raises(BackendUnavailableError):
            await consumer.read_new(10, 0)
        assert backend.calls[-1] == FaultyCall("read_new", "s", "lost")
        own = await consumer.read_own_pending(None, 10)
        assert [(r.entry_id, r.delivery_count) for r in own] == [(ids[0], 2), (ids[1], 2)]


async def test_nonempty_loses_only_replies_that_carry_records() -> None:
    """lose_reply with nonempty: reads that return nothing go through and do not count; the first
    read that returns records does the work and loses its reply."""
    async with FaultyBackend(MemoryBackend()) as backend:
        consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
        backend.fail("read_new", lose_reply=True, nonempty=True)
        assert await consumer.read_new(10, 0) == []
        assert await consumer.read_new(10, 0) == []
        ids = await backend.append(_entries("s", 2))
        with pytest.raises(BackendUnavailableError):
            await consumer.read_new(10, 0)
        outcomes = [call.outcome for call in backend.calls if call.method == "read_new"]
        assert outcomes == ["ok", "ok", "lost"]
        own = await consumer.read_own_pending(None, 10)
        assert [(r.entry_id, r.delivery_count) for r in own] == [(ids[0], 2), (ids[1], 2)]
        (later,) = await backend.append(_entries("s", 1))
        assert [r.entry_id for r in await consumer.read_new(10, 0)] == [later]  # used up


async def test_nonempty_loses_the_reply_of_a_read_already_waiting() -> None:
    """A nonempty fault acts on replies as they arrive: a read blocked when it is set loses the
    reply that its entries wake it with."""
    async with FaultyBackend(MemoryBackend()) as backend:
        consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
        failed: list[BaseException] = []

        async def read() -> None:
            try:
                await consumer.read_new(10, 5)
            except BackendUnavailableError as exc:
                failed.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await anyio.sleep(0.05)  # blocked in read_new now
            backend.fail("read_new", lose_reply=True, nonempty=True)
            await backend.append(_entries("s", 1))
        assert len(failed) == 1
        assert backend.count("read_new", "lost") == 1, backend.calls
        assert len(await consumer.read_own_pending(None, 10)) == 1


async def test_an_outage_fails_every_call_until_it_ends_but_close() -> None:
    backend = FaultyBackend(MemoryBackend())
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    with backend.outage():
        with pytest.raises(BackendUnavailableError):
            await backend.append(_entries("s", 1))
        with pytest.raises(BackendUnavailableError):
            await consumer.claim_idle(0, 10)
        await consumer.aclose()
    await backend.append(_entries("s", 1))
    await backend.aclose()
    assert backend.inner.closed  # type: ignore[attr-defined]


async def test_delays_wait_first_and_are_cancellable() -> None:
    async with FaultyBackend(MemoryBackend()) as backend:
        backend.delay("append", 0.2)
        start = anyio.current_time()
        await backend.append(_entries("s", 1))
        assert anyio.current_time() - start >= 0.19
        backend.delay("append", 10, times=None)
        with anyio.move_on_after(0.05) as scope:
            await backend.append(_entries("s", 1))
        assert scope.cancelled_caught
        backend.clear()
        await backend.append(_entries("s", 1))
        assert backend.count("append", "ok") == 2


def test_mistakes_are_refused_at_once() -> None:
    backend = FaultyBackend(MemoryBackend())
    with pytest.raises(ValueError, match="unknown SPI method 'read_nwe'"):
        backend.fail("read_nwe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="times"):
        backend.fail("ack", times=0)
    with pytest.raises(ValueError, match="StreamsinkError"):
        backend.fail("ack", error=ValueError)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seconds"):
        backend.delay("ack", -1)
    with pytest.raises(ValueError, match="nonempty needs lose_reply"):
        backend.fail("read_new", nonempty=True)
    with pytest.raises(ValueError, match="nonempty needs lose_reply"):
        backend.fail("ack", lose_reply=True, nonempty=True)


async def test_other_attributes_are_the_inner_backends() -> None:
    inner = MemoryBackend()
    async with FaultyBackend(inner) as backend:
        assert backend.broker is inner.broker
