"""The subscription against hostile entries and faults: decoders that raise anything, dead letters
that cannot be written or are themselves dead letters, large entries behind a stuck handler,
read-ahead whose lease ran out, and read replies lost on the way."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import orjson
import pytest

from streamsink import (
    BackendUnavailableError,
    StreamEvent,
    StreamSink,
    StreamsinkError,
    decode_envelope,
)
from streamsink.backend import Entry, StartPosition
from streamsink.testing import FaultyBackend
from streamsink_memory import MemoryBackend, MemoryBroker
from tests.support.clock import FakeClock, advance, clocked_subscriber
from tests.support.subscriptions import subscriber, take

pytestmark = pytest.mark.anyio

STREAM = "session/s"


def _event(index: int) -> StreamEvent:
    return StreamEvent("tool_start", f"run-{index}", "s", f"k{index}", {"index": index})


def _envelope(timestamp: str) -> bytes:
    return orjson.dumps({"type": "tool_end", "run_id": "r", "timestamp": timestamp})


# -- whatever a decoder raises is poison ---------------------------------------------------------


@pytest.mark.parametrize("mode", ["group", "fan-out", "manual"])
async def test_a_timestamp_beyond_datetime_is_delivered_not_poison(mode: str) -> None:
    """A timestamp that is valid RFC 3339 but overflows ``datetime`` in UTC (year 9999 with a
    negative offset, year 1 with a positive one) is one Go's decoder reads: the entry is
    delivered, with ``timestamp`` None and ``timestamp_ns`` set, never dead-lettered."""
    backend = MemoryBackend(MemoryBroker())
    sink = StreamSink(backend)
    await sink.send(_event(1))
    await backend.append([Entry(STREAM, "tool_end", _envelope("9999-12-31T23:59:59-01:00"))])
    await backend.append([Entry(STREAM, "tool_end", _envelope("0001-01-01T00:00:00+01:00"))])
    await sink.send(_event(2))
    errors: list[StreamsinkError] = []
    made = subscriber(backend, group=None if mode == "fan-out" else "g", on_error=errors.append)
    if mode == "manual":
        async with made.subscribe_manual(STREAM) as deliveries:
            got = await take(deliveries, 4)
            for delivery in got:
                await delivery.ack()
        events = [d.event for d in got]
        assert all(d.decode_error is None for d in got)
    else:
        async with made.subscribe(STREAM) as subscription:
            events = await take(subscription, 4)
            assert subscription.statistics().decode_errors == 0
    assert [e.timestamp is None for e in events if e is not None] == [False, True, True, False]
    assert [e.timestamp_ns for e in events if e is not None][1:3] == [
        253402304399_000_000_000,
        -62135600400_000_000_000,
    ]
    assert errors == []


@pytest.mark.parametrize("exception", [OverflowError, RuntimeError, RecursionError, KeyError])
@pytest.mark.parametrize("group", ["g", None])
async def test_whatever_a_decoder_raises_is_poison(
    exception: type[Exception], group: str | None
) -> None:
    """A custom decoder raising any exception makes that entry poison: reported, dead-lettered in
    a group, and the events around it still delivered."""

    def decoder(data: bytes) -> StreamEvent:
        if b"poison" in data:
            raise exception("decoder blew up")
        return decode_envelope(data)

    broker = MemoryBroker()
    backend = MemoryBackend(broker)
    await StreamSink(backend).send(_event(1))
    await backend.append([Entry(STREAM, "tool_end", b'{"poison": true}')])
    await StreamSink(backend).send(_event(2))
    async with subscriber(backend, quiet=True, group=group, decoder=decoder).subscribe(
        STREAM
    ) as events:
        got = await take(events, 2)
        stats = events.statistics()
    assert [event.payload["index"] for event in got] == [1, 2]
    assert stats.decode_errors == 1
    assert broker.entry_ids(f"{STREAM}:dlq") != [] if group else broker.stream_ids() == [STREAM]


# -- dead letters --------------------------------------------------------------------------------


@pytest.mark.parametrize("naming", ["default", "custom"])
async def test_a_dead_letter_stream_is_never_dead_lettered_again(naming: str) -> None:
    """Consuming a dead-letter stream with the envelope decoder reports its letters as
    undecodable and acknowledges them; it never writes them on into another dead-letter stream."""
    broker = MemoryBroker()
    backend = MemoryBackend(broker)
    options: dict[str, Any] = {}
    if naming == "custom":
        options["dead_letter_stream"] = lambda stream_id: f"dead/{stream_id}"
    await backend.append([Entry(STREAM, "tool_end", b"junk")])
    await StreamSink(backend).send(_event(1))
    async with subscriber(backend, quiet=True, group="g", **options).subscribe(STREAM) as events:
        await take(events, 1)
    letters = f"{STREAM}:dlq" if naming == "default" else f"dead/{STREAM}"
    assert len(broker.entry_ids(letters)) == 1
    await StreamSink(backend, None).send(StreamEvent("tool_start", "r", "dlq-marker"))
    made = subscriber(backend, quiet=True, group="dlq-reader", **options)
    async with made.subscribe(letters) as events:
        with anyio.move_on_after(0.3):
            async for event in events:
                raise AssertionError(f"a dead letter came out as an event: {event}")
        stats = events.statistics()
    assert stats.decode_errors == 1
    assert broker.pending(letters, "dlq-reader") == []  # acknowledged
    assert [
        s for s in broker.stream_ids() if s.count("dlq") > 1 or s.startswith("dead/dead/")
    ] == []


async def test_a_dead_letter_that_cannot_be_written_leaves_its_entry_pending() -> None:
    """A refused dead-letter write is retried, not terminal: nothing is acknowledged until the
    letter is written, consumption goes on meanwhile, and the letter lands once writes work
    (on a fake clock: redeliveries come as fast as the clock is moved)."""
    clock = FakeClock()
    broker = MemoryBroker(clock=clock)
    backend = FaultyBackend(MemoryBackend(broker))
    # Writes to the dead-letter stream are refused, as Redis refuses writes out of memory.
    out_of_memory = BackendUnavailableError("Redis is out of memory (test)")
    backend.fail("append", times=None, error=out_of_memory, stream_id=f"{STREAM}:dlq")
    await backend.append([Entry(STREAM, "tool_end", b"junk")])
    await StreamSink(backend).send(_event(1))
    errors: list[StreamsinkError] = []
    made = clocked_subscriber(
        backend, clock, group="g", ack_grace_period=0.2, on_error=errors.append
    )
    async with made.subscribe(STREAM) as events:
        (event,) = await take(events, 1)
        assert event.payload["index"] == 1
        junk = broker.entry_ids(STREAM)[0]
        with anyio.fail_after(5):
            while backend.count("append", "failed") < 2:  # two redeliveries, each refused
                await advance(clock, 0.25)
        assert junk in [p.entry_id for p in broker.pending(STREAM, "g")]  # not acknowledged
        backend.clear()
        with anyio.fail_after(5):
            while junk in [p.entry_id for p in broker.pending(STREAM, "g")]:
                await advance(clock, 0.25)
        stats = events.statistics()
    assert len(broker.entry_ids(f"{STREAM}:dlq")) == 1
    assert stats.dead_lettered == 1
    assert stats.dead_letter_failures == backend.count("append", "failed")
    assert any("out of memory" in str(error) for error in errors)


# -- a byte budget for read-ahead -----------------------------------------------------------------


async def test_large_entries_behind_a_stuck_handler_are_bounded_in_bytes() -> None:
    """Read-ahead stops at ``buffer_bytes`` of payload, not at ``buffer`` entries: 40 entries of
    256 KiB behind a handler that never finishes its first event are not all read."""
    backend = MemoryBackend(MemoryBroker(), options=None)
    blob = "x" * 256 * 1024
    sink = StreamSink(backend)
    for index in range(40):
        await sink.send(StreamEvent("tool_end", "r", "s", f"k{index}", {"blob": blob}))
    budget = 1024 * 1024
    async with subscriber(backend, quiet=True, group="g", buffer_bytes=budget).subscribe(
        STREAM
    ) as events:
        await take(events, 1)  # the handler is stuck on it from here
        await anyio.sleep(0.2)
        received = events.statistics().received
    # The budget (4 entries) plus the batch the reader holds while waiting, and the first read.
    assert 2 <= received <= 10, received


# -- leases of read-ahead -------------------------------------------------------------------------


async def test_read_ahead_whose_lease_ran_out_is_not_handed_out() -> None:
    """A handler stuck on one event for longer than the grace period stops the renewal of the
    read-ahead behind it, so the group gives that read-ahead to another consumer; when the
    handler comes back, the subscription does not hand it out a second time. (A process stopped
    by SIGSTOP is the same case; tests/faults runs that one with real processes.) On a fake
    clock: the handler is "stuck" while the clock is moved past the grace period."""
    clock = FakeClock()
    broker = MemoryBroker(clock=clock)
    backend = MemoryBackend(broker)
    await StreamSink(backend).send_many([_event(i) for i in range(10)])
    options = {"group": "g", "ack_grace_period": 0.3, "buffer": 10, "fetch_count": 10}
    stuck: list[int] = []
    other: list[int] = []

    async def other_consumer(*, task_status: Any) -> None:
        async with clocked_subscriber(backend, clock, **options).subscribe(STREAM) as events:
            task_status.started()
            async for event in events:
                other.append(event.payload["index"])

    async def handler(events: Any) -> None:
        async for event in events:
            stuck.append(event.payload["index"])

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            async with clocked_subscriber(backend, clock, **options).subscribe(STREAM) as events:
                stuck.append((await events.__anext__()).payload["index"])
                while events.statistics().received < 10:  # noqa: ASYNC110
                    await anyio.sleep(0.001)  # all ten read ahead
                await tg.start(other_consumer)
                await advance(clock, 0.6)  # stuck: the other consumer claims them
                async with anyio.create_task_group() as back:
                    back.start_soon(handler, events)  # the handler comes back
                    while (  # noqa: ASYNC110
                        len(set(stuck) | set(other)) < 10 or events.statistics().expired < 9
                    ):
                        await anyio.sleep(0.001)
                    back.cancel_scope.cancel()
                stats = events.statistics()
            tg.cancel_scope.cancel()
    assert sorted(set(stuck) | set(other)) == list(range(10))
    # Only the event the stuck handler held may be handled twice (it was reclaimed under it);
    # the read-ahead is handled once, by whichever consumer the group gave it to last.
    handled = Counter(stuck + other)
    assert {index for index, times in handled.items() if times > 1} <= {stuck[0]}, (stuck, other)
    assert stats.expired >= 9


async def test_claimed_read_ahead_is_renewed_as_the_delivery_it_is() -> None:
    """Read-ahead the subscription claimed (delivery count 2) has its lease renewed by naming
    that delivery, so while the application makes progress the group keeps it with the
    subscription: nobody else can claim it, and each event is handled once. On a fake clock."""
    clock = FakeClock()
    broker = MemoryBroker(clock=clock)
    backend = MemoryBackend(broker)
    await StreamSink(backend).send_many([_event(i) for i in range(10)])
    dead = await backend.open_group_consumer(STREAM, "g", "dead", StartPosition.oldest())
    assert len(await dead.read_new(10, 0)) == 10  # a consumer that died holding them all
    spy = await backend.open_group_consumer(STREAM, "g", "spy", StartPosition.oldest())
    options = {"group": "g", "ack_grace_period": 0.3, "buffer": 10, "fetch_count": 10}
    handled: list[int] = []
    with anyio.fail_after(10):
        async with clocked_subscriber(backend, clock, **options).subscribe(STREAM) as events:
            clock.advance(0.35)  # idle: the subscription claims them all
            while events.statistics().received < 10:  # noqa: ASYNC110
                await anyio.sleep(0.001)
            for _ in range(10):
                event = await events.__anext__()
                handled.append(event.payload["index"])
                await advance(clock, 0.05)
                stolen = await spy.claim_idle(0.3, 10)
                assert stolen == [], f"{len(stolen)} entries of the read-ahead were claimable"
    assert handled == list(range(10))


# -- a read reply lost on the way -----------------------------------------------------------------


def _lose_read_replies(backend: FaultyBackend, times: int) -> None:
    """The next ``times`` group reads that read entries lose their reply: the entries are read
    (pending for the consumer) but the call fails, as when a connection drops while the reply is
    on its way."""
    error = BackendUnavailableError("connection lost while reading the reply (test)")
    backend.fail("read_new", times=times, error=error, lose_reply=True, nonempty=True)


async def test_entries_of_a_lost_read_reply_come_back_at_once() -> None:
    """After a read whose reply was lost, the consumer fetches its own pending entries again as
    soon as the backend answers, instead of waiting a grace period for the group to reclaim them;
    what it already holds is not delivered twice."""
    backend = FaultyBackend(MemoryBackend(MemoryBroker()))
    sink = StreamSink(backend)
    options = {"group": "g", "ack_grace_period": 60.0, "buffer": 4, "fetch_count": 4}
    async with subscriber(backend, quiet=True, **options).subscribe(STREAM) as events:
        await sink.send_many([_event(i) for i in range(3)])
        first = await take(events, 2)  # one more is read ahead and held
        _lose_read_replies(backend, 2)
        await sink.send_many([_event(i) for i in range(3, 10)])
        rest = await take(events, 8, within=3)  # far less than the 60 s grace period
        stats = events.statistics()
    seen = [event.payload["index"] for event in first + rest]
    assert seen == list(range(10))
    assert stats.recovered >= 4


async def test_pending_entries_held_are_not_recovered_twice_in_manual_mode() -> None:
    """Manual mode: deliveries the application holds unsettled are not fetched again by the
    recovery after a lost reply."""
    backend = FaultyBackend(MemoryBackend(MemoryBroker()))
    sink = StreamSink(backend)
    options = {"group": "g", "ack_grace_period": 60.0, "buffer": 4, "fetch_count": 4}
    async with subscriber(backend, quiet=True, **options).subscribe_manual(STREAM) as deliveries:
        await sink.send_many([_event(i) for i in range(2)])
        held = await take(deliveries, 2)
        _lose_read_replies(backend, 1)
        await sink.send_many([_event(i) for i in range(2, 5)])
        rest = await take(deliveries, 3, within=3)
        with anyio.move_on_after(0.3):
            extra = await deliveries.__anext__()
            raise AssertionError(f"delivered twice: {extra}")
        for delivery in held + rest:
            await delivery.ack()
    indexes = [d.event.payload["index"] for d in held + rest if d.event is not None]
    assert indexes == list(range(5))
    assert backend.count("read_new", "lost") == 1  # the case this test is about did happen
