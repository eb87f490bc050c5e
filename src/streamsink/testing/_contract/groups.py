"""Rules 6-7 of docs/contract.md: start positions, consumer groups and fan-out readers."""

from __future__ import annotations

from typing import cast

import anyio

from ...backend import StartPosition, TimedBackend
from .._harness import Harness
from ._registry import check

__all__: list[str] = []


@check("6", "consumer_groups")
async def group_start_positions(h: Harness) -> None:
    """Groups start at oldest, after(id) (exclusive), at(time) (inclusive) or newest; an existing
    group keeps its stored position."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    sent = []
    for i in range(3):
        sent += await h.publish(backend, session, 1, first=i)
        await anyio.sleep(0.01)
    ids = [p.entry_id for p in sent]

    async def first_ids(start: StartPosition, group: str, count: int) -> list[str | None]:
        async with h.subscriber(backend, group=group, start=start).subscribe(stream) as sub:
            return [e.entry_id for e in await h.take(sub, count)]

    assert await first_ids(StartPosition.oldest(), h.name("g"), 3) == ids
    assert await first_ids(StartPosition.after(ids[0]), h.name("g"), 2) == ids[1:]
    # at() is inclusive: an entry of exactly that time is read. Only the backend knows its
    # entries' times (its clock, its ids), so this needs entry_time.
    if h.capabilities.entry_times:
        at = await cast(TimedBackend, backend).entry_time(stream, ids[1])
        assert await first_ids(StartPosition.at(at), h.name("g"), 2) == ids[1:]
    group = h.name("g")
    async with h.subscriber(backend, group=group, start=StartPosition.newest()).subscribe(
        stream
    ) as sub:
        (later,) = await h.publish(backend, session, 1, first=10)
        assert [e.entry_id for e in await h.take(sub, 1)] == [later.entry_id]
    # The group exists now: its stored position wins over start=oldest.
    (last,) = await h.publish(backend, session, 1, first=11)
    assert await first_ids(StartPosition.oldest(), group, 1) == [last.entry_id]


@check("6", "fan_out")
async def reader_start_positions(h: Harness) -> None:
    """Fan-out readers start at oldest, after(id) (exclusive) or newest."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    ids = [p.entry_id for p in await h.publish(backend, session, 3)]
    for start, expected in ((StartPosition.oldest(), ids), (StartPosition.after(ids[0]), ids[1:])):
        async with h.subscriber(backend, group=None, start=start).subscribe(stream) as sub:
            assert [e.entry_id for e in await h.take(sub, len(expected))] == expected
    async with h.subscriber(backend, group=None, start=StartPosition.newest()).subscribe(
        stream
    ) as sub:
        (later,) = await h.publish(backend, session, 1, first=5)
        assert [e.entry_id for e in await h.take(sub, 1)] == [later.entry_id]


@check("7", "consumer_groups")
async def group_consumers_split_events(h: Harness) -> None:
    """Consumers sharing a group get each event exactly once between them."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    group = h.name("g")
    got: list[list[int]] = [[], []]
    done = anyio.Event()

    async def consume(index: int) -> None:
        subscriber = h.subscriber(backend, group=group, buffer=1, fetch_count=1)
        async with subscriber.subscribe(stream) as sub:
            async for event in sub:
                got[index].append(event.payload["index"])
                await anyio.sleep(0.001)
                if sum(map(len, got)) >= 40:
                    done.set()
                    return

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume, 0)
        tg.start_soon(consume, 1)
        await h.publish(backend, session, 40)
        with anyio.fail_after(h.timing.timeout):
            await done.wait()
        tg.cancel_scope.cancel()
    everything = sorted(got[0] + got[1])
    assert everything == list(range(40)), f"duplicates or gaps: {got}"


@check("7", "consumer_groups")
async def each_group_sees_every_event(h: Harness) -> None:
    """Different groups on one stream each get every event."""
    backend = await h.backend()
    session = h.session()
    ids = [p.entry_id for p in await h.publish(backend, session, 10)]
    for _ in range(2):
        async with h.subscriber(backend).subscribe(f"session/{session}") as sub:
            assert [e.entry_id for e in await h.take(sub, 10)] == ids


@check("7", "fan_out")
async def fan_out_readers_see_every_event(h: Harness) -> None:
    """Every fan-out reader gets every event, and its deliveries need no settling."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    ids = [p.entry_id for p in await h.publish(backend, session, 10)]
    async with (
        h.subscriber(backend, group=None).subscribe(stream) as first,
        h.subscriber(backend, group=None).subscribe_manual(stream) as second,
    ):
        assert [e.entry_id for e in await h.take(first, 10)] == ids
        deliveries = await h.take(second, 10)
        assert [d.entry_id for d in deliveries] == ids
        for delivery in deliveries:
            await delivery.ack()
            await delivery.ack()
