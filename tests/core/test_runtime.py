"""RuntimeStreams keeps the subscribers it made only as long as it needs them.

It must stop every live subscriber when it closes, but a subscriber that was closed, or dropped
by the application without a subscription open, must not be kept alive by it: a long-running
runtime that makes one subscriber per request would otherwise grow without bound.
"""

from __future__ import annotations

import gc
import uuid
import weakref
from collections.abc import AsyncIterator

import anyio
import pytest

import streamsink
from streamsink import RuntimeStreams, StartPosition, StreamEvent, StreamSubscriber

pytestmark = pytest.mark.anyio


@pytest.fixture
async def streams() -> AsyncIterator[RuntimeStreams]:
    async with streamsink.connect(f"memory://runtime-{uuid.uuid4().hex[:8]}") as opened:
        yield opened


def _tracked(streams: RuntimeStreams) -> int:
    """How many subscribers the runtime still refers to (its internal collection)."""
    return len(list(streams._subscribers))


async def test_a_closed_subscriber_is_released(streams: RuntimeStreams) -> None:
    """Once closed and dropped by the application, a subscriber can be garbage collected."""
    subscriber = streams.new_subscriber()
    ref = weakref.ref(subscriber)
    await subscriber.aclose()
    del subscriber
    gc.collect()
    assert ref() is None
    assert _tracked(streams) == 0


async def test_a_subscriber_closed_after_a_subscription_is_released(
    streams: RuntimeStreams,
) -> None:
    """A subscriber that opened and closed subscriptions is released like one that never did."""
    session = f"s-{uuid.uuid4().hex[:8]}"
    await streams.sink.send(StreamEvent("tool_start", "r", session))
    subscriber = streams.new_subscriber(start=StartPosition.oldest())
    async with subscriber.subscribe(f"session/{session}") as events:
        with anyio.fail_after(5):
            assert (await events.__anext__()).type == "tool_start"
    ref = weakref.ref(subscriber)
    await subscriber.aclose()
    del subscriber, events
    gc.collect()
    assert ref() is None


async def test_a_forgotten_idle_subscriber_is_released(streams: RuntimeStreams) -> None:
    """A subscriber the application dropped without closing, with no subscription open, is not
    kept alive by the runtime."""
    ref = weakref.ref(streams.new_subscriber(group=None))
    gc.collect()
    assert ref() is None
    assert _tracked(streams) == 0


async def test_many_cycles_do_not_grow_the_runtime(streams: RuntimeStreams) -> None:
    """Thousands of create/close cycles leave the runtime's collection as small as it began."""
    stream = f"session/s-{uuid.uuid4().hex[:8]}"
    for i in range(5_000):
        subscriber = streams.new_subscriber(group=None)
        if i % 500 == 0:  # now and then with a subscription opened and closed
            async with subscriber.subscribe(stream):
                pass
        await subscriber.aclose()
        if i % 7 == 0:
            streams.new_subscriber()  # and some forgotten without a close
    del subscriber
    gc.collect()
    assert _tracked(streams) == 0


async def test_aclose_stops_every_live_subscriber(streams: RuntimeStreams) -> None:
    """Subscribers with a subscription open are stopped by ``RuntimeStreams.aclose()``, even
    when the application kept no reference to the subscriber itself."""
    stream = f"session/s-{uuid.uuid4().hex[:8]}"
    ended: list[str] = []
    opened = anyio.Event()
    refs: list[weakref.ref[StreamSubscriber]] = []

    async def consume(name: str, group: str | None) -> None:
        subscriber = streams.new_subscriber(group=group)
        refs.append(weakref.ref(subscriber))
        subscription = subscriber.subscribe(stream)
        del subscriber  # only the subscription refers to it now
        async with subscription as events:
            if len(refs) == 2:
                opened.set()
            async for _ in events:
                pass
        ended.append(name)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume, "group", "g")
            tg.start_soon(consume, "fan-out", None)
            await opened.wait()
            gc.collect()
            assert all(ref() is not None for ref in refs)
            assert _tracked(streams) == 2
            await streams.aclose()
    assert sorted(ended) == ["fan-out", "group"]
    gc.collect()
    assert all(ref() is None for ref in refs)
