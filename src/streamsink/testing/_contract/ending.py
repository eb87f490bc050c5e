"""Rules 12-15 of docs/contract.md: clean ends, closing a subscription, back-pressure,
connection loss and lost groups."""

from __future__ import annotations

from typing import Any

import anyio

from ..._sink import StreamSink
from ...backend import StartPosition
from .._harness import Harness
from ._registry import check

__all__: list[str] = []


@check("13")
async def close_is_prompt_and_clean(h: Harness) -> None:
    """Closing a subscription blocked in a read ends iteration without error, well under a second."""
    backend = await h.backend()
    for group in (h.name("g"), None):
        subscriber = h.subscriber(backend, group=group, max_block=5.0)
        async with subscriber.subscribe(f"session/{h.session()}") as sub:
            ended = anyio.Event()

            async def iterate(sub: Any = sub, ended: anyio.Event = ended) -> None:
                async for event in sub:
                    raise AssertionError(f"unexpected {event!r}")
                ended.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(iterate)
                await anyio.sleep(0.2)
                started = anyio.current_time()
                await sub.aclose()
                with anyio.fail_after(0.5):
                    await ended.wait()
            await sub.aclose()
        assert anyio.current_time() - started < 0.5


@check("13")
async def cancelled_waits_lose_nothing(h: Harness) -> None:
    """A wait for the next event that is cancelled (a timeout around ``__anext__``) ends only
    that wait: every event still comes, once (in order for a fan-out reader)."""
    backend = await h.backend()
    count = 30
    for group in (h.name("g"), None):
        session = h.session()
        subscriber = h.subscriber(backend, group=group, start=StartPosition.newest())
        async with subscriber.subscribe(f"session/{session}") as sub:
            got: list[Any] = []

            async def produce(session: str = session) -> None:
                sink = StreamSink(backend)
                for i in range(count):
                    await sink.send(h.event(session, i))
                    await anyio.sleep(0.002)

            async with anyio.create_task_group() as tg:
                tg.start_soon(produce)
                with anyio.fail_after(h.timing.timeout):
                    while len(got) < count:
                        # Shorter than the gaps between sends: many waits end cancelled, some
                        # while the backend is handing entries over.
                        with anyio.move_on_after(0.001):
                            event = await sub.__anext__()
                            got.append(event.payload["index"])
            await h.nothing_within(sub, h.timing.claim * 2)
        if group is None:
            assert got == list(range(count)), f"fan-out reader got {got}"
        else:
            assert sorted(got) == list(range(count)), f"group got {got}"


@check("12", "destroy_ends_subscriptions")
async def destroy_ends_subscriptions(h: Harness) -> None:
    """Destroying a stream ends its subscriptions' iteration without error."""
    backend = await h.backend()
    session = h.session()
    await h.publish(backend, session, 1)
    async with h.subscriber(backend).subscribe(f"session/{session}") as sub:
        await h.take(sub, 1)
        await backend.destroy(f"session/{session}")
        with anyio.fail_after(h.timing.timeout):
            async for event in sub:
                raise AssertionError(f"unexpected {event!r} after destroy")


@check("15", "consumer_groups")
async def vanished_group_is_recreated(h: Harness) -> None:
    """When a stream (with its group) vanishes under a subscription, as after a wipe of the
    broker's data or a destroy by another process, the group is re-created and new events flow (backends where
    destroy ends subscriptions end them cleanly instead)."""
    backend = await h.backend()
    elsewhere = await h.backend()  # another connection, as another process would have
    session = h.session()
    stream = f"session/{session}"
    await h.publish(backend, session, 1)
    async with h.subscriber(backend).subscribe(stream) as sub:
        await h.take(sub, 1)
        await elsewhere.destroy(stream)
        if h.capabilities.destroy_ends_subscriptions:
            with anyio.fail_after(h.timing.timeout):
                async for event in sub:
                    raise AssertionError(f"unexpected {event!r} after destroy")
            return
        await anyio.sleep(h.timing.claim * 4)
        (later,) = await h.publish(backend, session, 1, first=2)
        (event,) = await h.take(sub, 1)
        assert event.entry_id == later.entry_id
        assert sub.statistics().groups_recreated >= 1


@check("14", "consumer_groups")
async def slow_consumer_bounds_reading(h: Harness) -> None:
    """A consumer that does not keep up stops the subscription from reading ahead past its buffer."""
    backend = await h.backend()
    session = h.session()
    await h.publish(backend, session, 60)
    async with h.subscriber(backend, buffer=4, fetch_count=2).subscribe(
        f"session/{session}"
    ) as sub:
        await h.take(sub, 1)
        await anyio.sleep(0.3)
        received = sub.statistics().received
    assert received <= 4 + 2 + 1, f"read {received} entries ahead of a consumer that took 1"
