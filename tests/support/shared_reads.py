"""Scenarios of shared fan-out reads, run on memory:// (tests/core/test_shared_reads.py) and on a
real redis-server (tests/redis/test_shared_reads.py)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

import streamsink
from streamsink import StreamEvent, Subscription, SubscriptionError
from streamsink._sharing import SharedReader, hub_of
from streamsink.backend import Backend

__all__ = [
    "backend_close_ends_every_reader",
    "cancelling_the_leader_hands_the_read_over",
    "every_reader_gets_every_entry",
    "joins_and_leaves_are_prompt_while_blocked",
    "slow_reader_is_detached_and_catches_up",
    "trimming_overtakes_a_detached_reader",
]

PROMPT = 1.0  # generous: a shared read blocks 5 s, so anything under this did not wait it out


def sessions(count: int) -> list[str]:
    tag = uuid.uuid4().hex[:8]
    return [f"shared-{tag}-{i}" for i in range(count)]


def reader_of(subscription: Subscription[Any]) -> SharedReader:
    reader = subscription._reader
    assert isinstance(reader, SharedReader), f"not a shared reader: {reader!r}"
    return reader


async def send(streams: streamsink.RuntimeStreams, session: str, count: int) -> list[str]:
    sent = await streams.sink.send_many([StreamEvent("e", f"r{i}", session) for i in range(count)])
    return [s.entry_id for s in sent]


async def every_reader_gets_every_entry(
    backend: Backend,
    *,
    readers: int = 500,
    streams_count: int = 50,
    entries: int = 10,
    while_joined: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """``readers`` fan-out subscriptions over ``streams_count`` streams each get every entry of
    their stream exactly once, in order; ``while_joined`` runs once all have joined."""
    names = sessions(streams_count)
    got: dict[int, list[str]] = {}
    async with streamsink.connect(backend) as streams:
        subscriber = streams.new_subscriber(group=None)
        joined = 0
        all_joined = anyio.Event()

        async def read(index: int) -> None:
            nonlocal joined
            async with subscriber.subscribe(f"session/{names[index % streams_count]}") as events:
                joined += 1
                if joined == readers:
                    all_joined.set()
                mine = got[index] = []
                async for event in events:
                    mine.append(event.entry_id)
                    if len(mine) == entries:
                        return

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for index in range(readers):
                    tg.start_soon(read, index)
                await all_joined.wait()
                hub = hub_of(backend)
                assert hub is not None
                assert hub.readers == readers
                assert hub.channels == streams_count, f"{hub.channels} channels"
                if while_joined is not None:
                    await while_joined()
                sent = {name: await send(streams, name, entries) for name in names}
        for index in range(readers):
            expected = sent[names[index % streams_count]]
            assert got[index] == expected, f"reader {index} got {got[index]}, not {expected}"
    assert hub_of(backend) is None, "the hub outlived its last reader"


async def slow_reader_is_detached_and_catches_up(backend: Backend, *, entries: int = 200) -> None:
    """A reader that never iterates does not hold the others back, buffers no more than its
    bound, and reads everything from its own cursor once it iterates."""
    (name,) = sessions(1)
    stream = f"session/{name}"
    async with streamsink.connect(backend) as streams:
        subscriber = streams.new_subscriber(group=None, buffer=4)
        roomy = streams.new_subscriber(group=None, buffer=1000)
        async with subscriber.subscribe(stream) as slow:
            fast: dict[int, list[str]] = {}

            async def read(index: int) -> None:
                # Roomy enough never to be detached: the shared read goes on while they wait.
                async with roomy.subscribe(stream) as events:
                    mine = fast[index] = []
                    joined.set()
                    async for event in events:
                        mine.append(event.entry_id)
                        if len(mine) == entries:
                            return

            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    for index in range(5):
                        joined = anyio.Event()
                        tg.start_soon(read, index)
                        await joined.wait()
                    sent = await send(streams, name, entries)
            assert all(ids == sent for ids in fast.values()), "a fast reader missed entries"
            reader = reader_of(slow)
            assert reader.buffer.entries <= 4, f"the slow reader buffered {reader.buffer.entries}"
            assert reader.detached, "the slow reader was not detached"
            with anyio.fail_after(10):
                caught = [event.entry_id async for event in _first(slow, entries)]
            assert caught == sent, "the slow reader lost or reordered entries catching up"
            # Its pump reads on (its read-ahead has room): at the end of the stream it joins.
            with anyio.fail_after(PROMPT):
                while reader.detached:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            more = await send(streams, name, 3)
            with anyio.fail_after(PROMPT):
                assert [event.entry_id async for event in _first(slow, 3)] == more


async def _first(subscription: Subscription[Any], count: int) -> Any:
    taken = 0
    async for item in subscription:
        yield item
        taken += 1
        if taken == count:
            return


async def trimming_overtakes_a_detached_reader(backend: Backend, *, entries: int = 500) -> None:
    """A detached reader whose entries trimming removed gets the loss reported once, with its
    size: what it received and what it was told it skipped add up to what was sent."""
    (name,) = sessions(1)
    stream = f"session/{name}"
    errors: list[Exception] = []
    async with streamsink.connect(backend) as streams:
        subscriber = streams.new_subscriber(group=None, buffer=4, on_error=errors.append)
        roomy = streams.new_subscriber(group=None, buffer=1000)
        async with subscriber.subscribe(stream) as slow:
            async with roomy.subscribe(stream) as fast:  # never detached: it keeps reading
                sent: list[str] = []
                for chunk in (50, entries - 50):  # the slow one is detached, then overtaken
                    sent += await send(streams, name, chunk)
                    with anyio.fail_after(20):
                        async for event in fast:
                            if event.entry_id == sent[-1]:
                                break
                    assert reader_of(slow).detached, reader_of(slow)
            received: list[StreamEvent] = []
            with anyio.fail_after(20):
                async for event in slow:
                    received.append(event)
                    if event.entry_id == sent[-1]:
                        break
            stats = slow.statistics()
    ids = [event.entry_id for event in received]
    assert ids == [i for i in sent if i in set(ids)], "entries out of order"
    assert len(ids) < entries, "nothing was trimmed: the test did not overtake the reader"
    gapped = [event for event in received if event.gap is not None]
    assert gapped, "no event carries the gap"
    assert stats.gaps >= 1, stats
    assert stats.skipped == entries - len(ids), (stats, len(ids))
    assert sum(event.gap.count or 0 for event in gapped) == entries - len(ids)


async def joins_and_leaves_are_prompt_while_blocked(backend: Backend) -> None:
    """With the shared read blocked, a reader joining on a new stream gets its first entry
    promptly, and a reader leaving (the leader included) leaves at once without holding up the
    others."""
    first, second = sessions(2)
    async with streamsink.connect(backend) as streams:
        subscriber = streams.new_subscriber(group=None)
        async with subscriber.subscribe(f"session/{first}") as b:
            async with subscriber.subscribe(f"session/{first}") as a:
                with anyio.move_on_after(0.3):  # the shared read is blocked by now
                    await a.__anext__()
                async with subscriber.subscribe(f"session/{second}") as late:
                    (sent,) = await send(streams, second, 1)
                    with anyio.fail_after(PROMPT):
                        assert (await late.__anext__()).entry_id == sent
                with anyio.move_on_after(0.3):
                    await b.__anext__()
                with anyio.fail_after(PROMPT):
                    await a.aclose()  # whoever leads, leaving does not wait for the read
            (sent,) = await send(streams, first, 1)
            with anyio.fail_after(PROMPT):
                assert (await b.__anext__()).entry_id == sent


async def cancelling_the_leader_hands_the_read_over(backend: Backend) -> None:
    """The reader leading the shared read is cancelled while blocked: another takes over, and
    the rest get the next entry promptly."""
    (name,) = sessions(1)
    stream = f"session/{name}"
    async with streamsink.connect(backend) as streams:
        subscriber = streams.new_subscriber(group=None)
        scopes: dict[SharedReader, anyio.CancelScope] = {}
        got: dict[SharedReader, list[str]] = {}

        async def read(ready: anyio.Event) -> None:
            with anyio.CancelScope() as scope:
                async with subscriber.subscribe(stream) as events:
                    reader = reader_of(events)
                    scopes[reader] = scope
                    got[reader] = []
                    ready.set()
                    async for event in events:
                        got[reader].append(event.entry_id)

        async with anyio.create_task_group() as tg:
            for _ in range(4):
                ready = anyio.Event()
                tg.start_soon(read, ready)
                await ready.wait()
            hub = hub_of(backend)
            assert hub is not None
            with anyio.fail_after(PROMPT):
                while (leader := next(iter(scopes)).lane.leader) is None:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            await anyio.sleep(0.1)  # blocked in the backend now
            scopes[leader].cancel()
            (sent,) = await send(streams, name, 1)
            with anyio.fail_after(PROMPT):
                while not all(got[r] == [sent] for r in got if r is not leader):  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
    assert hub_of(backend) is None


async def backend_close_ends_every_reader(backend: Backend, readers: int = 10) -> None:
    """Closing the backend under blocked shared readers ends each subscription promptly (with
    an error saying the backend closed), and leaves no hub behind."""
    names = sessions(3)
    ended: list[BaseException | None] = []
    async with streamsink.connect(backend) as streams:
        subscriber = streams.new_subscriber(group=None)

        async def read(index: int, ready: anyio.Event) -> None:
            try:
                async with subscriber.subscribe(f"session/{names[index % 3]}") as events:
                    ready.set()
                    async for _ in events:
                        pass
            except SubscriptionError as exc:
                ended.append(exc)
            else:
                ended.append(None)

        with anyio.fail_after(PROMPT * 5):
            async with anyio.create_task_group() as tg:
                for index in range(readers):
                    ready = anyio.Event()
                    tg.start_soon(read, index, ready)
                    await ready.wait()
                await anyio.sleep(0.2)
                await backend.aclose()
    assert len(ended) == readers
    assert all(exc is None or "closed" in str(exc) for exc in ended), ended
    assert hub_of(backend) is None
