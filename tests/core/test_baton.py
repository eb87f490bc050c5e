"""An application task waiting with nothing buffered does the pump's blocking read itself
(``_consuming/_baton.py``): what happens when that task is cancelled, the read fails, or the
subscription closes meanwhile."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from streamsink import StreamEvent, StreamSink, StreamsinkError, SubscriptionError
from streamsink.backend import GroupConsumer, Record, StartPosition
from streamsink.testing import FaultyBackend
from streamsink_memory import MemoryBackend, MemoryBroker
from tests.support.subscriptions import subscriber

pytestmark = pytest.mark.anyio

STREAM = "session/s"


class _HeldReads:
    """A memory backend whose group reads, once ``hold`` is set, take their entries from the
    broker (they are pending now) and then wait: a read cancelled after the broker handed
    it entries, as a blocked Redis read can be."""

    def __init__(self) -> None:
        self.inner = MemoryBackend(MemoryBroker())
        self.hold = False
        self.holding = anyio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def open_group_consumer(self, *args: Any, **kwargs: Any) -> GroupConsumer:
        return _HeldConsumer(self, await self.inner.open_group_consumer(*args, **kwargs))


class _HeldConsumer:
    def __init__(self, backend: _HeldReads, inner: GroupConsumer) -> None:
        self._backend = backend
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def read_new(self, count: int, block: float) -> Sequence[Record]:
        records = await self._inner.read_new(count, block)
        if records and self._backend.hold:
            self._backend.hold = False
            self._backend.holding.set()
            await anyio.sleep_forever()
        return records


async def test_a_task_cancelled_inside_the_read_leaves_nothing_behind() -> None:
    """A worker cancelled while its read held entries: the subscription fetches them again at
    once, so another worker gets them without waiting out the grace period (30 s here)."""
    backend = _HeldReads()
    made = subscriber(backend, group="g", ack_grace_period=30.0, claim_interval=0.05)
    async with made.subscribe(STREAM) as events:
        got: list[str] = []
        async with anyio.create_task_group() as tg:
            worker = anyio.CancelScope()

            async def first_worker() -> None:
                with worker:
                    async for event in events:
                        raise AssertionError(f"the cancelled worker got {event!r}")

            tg.start_soon(first_worker)
            await anyio.wait_all_tasks_blocked()
            backend.hold = True
            await StreamSink(backend).send(StreamEvent("tool_start", "r", "s", "held"))
            with anyio.fail_after(2):
                await backend.holding.wait()
            worker.cancel()
            with anyio.fail_after(2):
                async for event in events:
                    got.append(event.event_key)
                    break
        assert got == ["held"]
        assert events.statistics().recovered == 1


@pytest.mark.parametrize("group", ["g", None])
async def test_a_cancelled_waiting_worker_hands_over_to_the_others(group: str | None) -> None:
    """Cancelling one of two waiting workers (no deadline: it would have done the read) leaves
    the other to receive every later event, promptly."""
    backend = MemoryBackend(MemoryBroker())
    grace = {"ack_grace_period": 30.0} if group else {}
    made = subscriber(backend, group=group, start=StartPosition.newest(), **grace)
    async with made.subscribe(STREAM) as events:
        got: list[str] = []
        async with anyio.create_task_group() as tg:
            scopes = [anyio.CancelScope(), anyio.CancelScope()]

            async def worker(scope: anyio.CancelScope) -> None:
                with scope:
                    async for event in events:
                        got.append(event.event_key)
                        if len(got) == 5:
                            tg.cancel_scope.cancel()

            for scope in scopes:
                tg.start_soon(worker, scope)
            await anyio.wait_all_tasks_blocked()
            scopes[0].cancel()
            await anyio.wait_all_tasks_blocked()
            sink = StreamSink(backend)
            with anyio.fail_after(2):
                for i in range(5):
                    await sink.send(StreamEvent("tool_start", "r", "s", f"k{i}"))
                await anyio.sleep_forever()
        assert got == [f"k{i}" for i in range(5)]


@pytest.mark.parametrize("group", ["g", None])
async def test_a_read_failing_in_the_application_task_ends_the_iteration(
    group: str | None,
) -> None:
    """A read that fails for good while the application task runs it fails the subscription
    as a failure of the pump's own read does: the iteration raises SubscriptionError."""
    backend = FaultyBackend(MemoryBackend(MemoryBroker()))
    made = subscriber(
        backend, quiet=True, group=group, start=StartPosition.newest(), max_block=0.02
    )
    method = "read_new" if group else "read"
    async with made.subscribe(STREAM) as events:

        async def fail_soon() -> None:
            # The reads that follow the one blocked now (max_block is short) are the
            # application task's: it waits with nothing buffered.
            await anyio.wait_all_tasks_blocked()
            backend.fail(method, times=None, error=StreamsinkError("the broker said no"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(fail_soon)
            with anyio.fail_after(2):
                with pytest.raises(SubscriptionError, match="the broker said no"):
                    await _first(events)


async def test_closing_from_another_task_ends_a_read_the_application_runs() -> None:
    """``aclose`` from another task while the iterating task does the read: it ends at once."""
    backend = MemoryBackend(MemoryBroker())
    made = subscriber(backend, group="g", max_block=30.0, claim_interval=30.0)
    async with made.subscribe(STREAM) as events, anyio.create_task_group() as tg:

        async def iterate() -> None:
            async for event in events:
                raise AssertionError(f"unexpected {event!r}")

        tg.start_soon(iterate)
        await anyio.wait_all_tasks_blocked()
        with anyio.fail_after(1):
            await events.aclose()


async def test_closing_ends_a_fan_out_read_the_application_runs_again() -> None:
    """A fan-out reader's application task runs read after read itself while they catch up
    (the step stays offered to it); ``aclose`` from another task ends such a read at once."""
    backend = MemoryBackend(MemoryBroker())
    made = subscriber(backend, group=None, start=StartPosition.newest(), max_block=30.0)
    sink = StreamSink(backend)
    async with made.subscribe(STREAM) as events, anyio.create_task_group() as tg:
        got: list[str] = []
        three = anyio.Event()

        async def iterate() -> None:
            async for event in events:
                got.append(event.event_key)
                if len(got) == 3:
                    three.set()

        tg.start_soon(iterate)
        for i in range(3):  # one at a time: each read catches up, the next is run again
            await anyio.wait_all_tasks_blocked()
            await sink.send(StreamEvent("tool_start", "r", "s", f"k{i}"))
        with anyio.fail_after(2):
            await three.wait()
        await anyio.wait_all_tasks_blocked()
        with anyio.fail_after(1):
            await events.aclose()
    assert got == ["k0", "k1", "k2"]


async def test_a_fan_out_worker_waiting_with_a_deadline_misses_nothing() -> None:
    """A fan-out application task that waits with a deadline between events gives the read
    back (it would be cancelled at the deadline); the pump reads meanwhile, nothing is lost."""
    backend = MemoryBackend(MemoryBroker())
    made = subscriber(backend, group=None, start=StartPosition.newest(), max_block=30.0)
    sink = StreamSink(backend)
    async with made.subscribe(STREAM) as events:
        iterator = events.__aiter__()
        got: list[str] = []
        for i in range(4):
            if i % 2:  # every other wait has a deadline far shorter than max_block
                with anyio.move_on_after(0.01):
                    await iterator.__anext__()
                    raise AssertionError("nothing was sent yet")
            async with anyio.create_task_group() as tg:

                async def send_soon(key: str = f"k{i}") -> None:
                    await anyio.wait_all_tasks_blocked()
                    await sink.send(StreamEvent("tool_start", "r", "s", key))

                tg.start_soon(send_soon)
                with anyio.fail_after(2):
                    got.append((await iterator.__anext__()).event_key)
    assert got == ["k0", "k1", "k2", "k3"]


async def _first(events: Any) -> None:
    async for event in events:
        raise AssertionError(f"unexpected {event!r}")
