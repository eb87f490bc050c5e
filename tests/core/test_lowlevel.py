"""``streamsink.lowlevel``: the clock, checkpoint and waiter the core and backends share, on
asyncio (their fast paths) and on trio (anyio's own calls)."""

from __future__ import annotations

import math

import anyio
import pytest

from streamsink import StartPosition, StreamEvent, StreamSink, StreamSubscriber, SubscriberOptions
from streamsink.lowlevel import checkpoint, clock, new_waiter, running_loop
from streamsink_memory import MemoryBackend, MemoryBroker

pytestmark = pytest.mark.anyio


async def test_running_loop_is_asyncio_only(anyio_backend: str) -> None:
    assert (running_loop() is not None) == (anyio_backend == "asyncio")


async def test_the_clock_is_anyios() -> None:
    now = clock()
    before = anyio.current_time()
    reading = now()
    assert before <= reading <= anyio.current_time()


async def test_checkpoint_raises_in_a_cancelled_scope() -> None:
    reached = False
    with anyio.CancelScope() as scope:
        scope.cancel()
        await checkpoint()
        reached = True
    assert not reached
    assert scope.cancelled_caught


async def test_a_set_waiter_wakes_its_wait() -> None:
    waiter = new_waiter()
    assert not waiter.is_set()

    async def set_later() -> None:
        await anyio.wait_all_tasks_blocked()
        waiter.set()
        waiter.set()  # idempotent

    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            tg.start_soon(set_later)
            assert await waiter.wait() is True
    assert waiter.is_set()


async def test_a_waiter_times_out_at_its_deadline() -> None:
    waiter = new_waiter()
    started = anyio.current_time()
    with anyio.fail_after(2):
        assert await waiter.wait(started + 0.05) is False
    assert anyio.current_time() - started >= 0.04
    assert not waiter.is_set()


async def test_a_waiter_set_before_its_wait_returns_at_once() -> None:
    waiter = new_waiter()
    waiter.set()
    with anyio.fail_after(1):
        assert await waiter.wait(math.inf) is True


async def test_a_cancelled_wait_raises_cancellation() -> None:
    waiter = new_waiter()
    with anyio.move_on_after(0.05) as scope:
        await waiter.wait()
    assert scope.cancelled_caught
    assert not waiter.is_set()


async def test_buffered_events_are_not_handed_out_in_a_cancelled_scope() -> None:
    """Taking events from the subscription's buffer checks for cancellation once per batch, so
    a task whose scope was cancelled stops within a batch even when the buffer is full."""
    backend = MemoryBackend(MemoryBroker())
    try:
        sink = StreamSink(backend)
        await sink.send_many([StreamEvent("t", "r", "lowlevel", payload=i) for i in range(32)])
        options = SubscriberOptions(group=None, buffer=8, start=StartPosition.oldest())
        async with StreamSubscriber(backend, options).subscribe("session/lowlevel") as events:
            taken = 0
            with anyio.fail_after(2):
                async for _ in events:
                    taken += 1
                    if taken == 3:
                        break
            with anyio.CancelScope() as scope:
                scope.cancel()
                async for _ in events:
                    taken += 1
            assert scope.cancelled_caught
            assert taken <= 3 + 8, taken  # at most what was left of the batch in hand
            assert taken < 32
    finally:
        await backend.aclose()
