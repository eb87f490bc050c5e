"""The contract checks of docs/contract.md, one coroutine each, pytest-free (they raise
AssertionError)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import anyio
import attrs
import orjson

from .._deadletter import DEAD_LETTER_EVENT, decode_dead_letter
from .._delivery import Delivery
from .._envelope import decode_envelope
from .._events import StreamEvent
from .._exceptions import (
    AckError,
    ConfigurationError,
    DecodeError,
    EntriesSkippedError,
    SinkClosedError,
    StreamsinkError,
)
from .._topics import event_topic
from ..backend import Backend, Capabilities, Entry, StartPosition, TimedBackend
from ._harness import Harness

__all__ = ["CHECKS", "ConformanceCheck"]

CheckFunction = Callable[[Harness], Awaitable[None]]


@attrs.frozen
class ConformanceCheck:
    """One check of the contract: ``rule`` is the number of the rule it checks in
    docs/contract.md, ``requires`` the :class:`~streamsink.backend.Capabilities` flags it needs."""

    name: str
    rule: str
    summary: str
    requires: tuple[str, ...]
    function: CheckFunction = attrs.field(repr=False)

    def missing(self, capabilities: Capabilities) -> list[str]:
        """The required capabilities the backend does not declare."""
        return [flag for flag in self.requires if not getattr(capabilities, flag)]

    def __str__(self) -> str:
        return self.name


CHECKS: list[ConformanceCheck] = []


def check(rule: str, *requires: str) -> Callable[[CheckFunction], CheckFunction]:
    def register(function: CheckFunction) -> CheckFunction:
        doc = (function.__doc__ or "").strip().splitlines()[0]
        CHECKS.append(ConformanceCheck(function.__name__, rule, doc, requires, function))
        return function

    return register


def _payloads(records: Any) -> list[Any]:
    return [orjson.loads(r.payload)["payload"] for r in records]


# -- publishing -----------------------------------------------------------------------------------


@check("1", "fan_out")
async def send_publishes_envelope(h: Harness) -> None:
    """send() writes an envelope to session/<session id> and returns its entry id."""
    backend = await h.backend()
    session = h.session()
    before = datetime.now(UTC) - timedelta(seconds=1)
    event = StreamEvent(
        "tool_end", "run-1", session, "evt-1", {"result": {"status": "ok"}}, '{"rows":[1,2]}'
    )
    published = await h.sink(backend).send(event)
    assert published.stream_id == f"session/{session}", published
    assert published.event is event
    (record,) = await h.read_all(backend, published.stream_id)
    assert record.entry_id == published.entry_id
    assert record.name == "tool_end"
    assert record.payload is not None
    decoded = decode_envelope(record.payload)
    assert (decoded.type, decoded.run_id, decoded.session_id, decoded.event_key) == (
        "tool_end",
        "run-1",
        session,
        "evt-1",
    )
    assert decoded.payload == {"result": {"status": "ok"}}
    assert decoded.server_data_value() == {"rows": [1, 2]}
    assert decoded.timestamp is not None
    assert before <= decoded.timestamp <= datetime.now(UTC) + timedelta(seconds=1)


@check("1", "fan_out")
async def bad_events_write_nothing(h: Harness) -> None:
    """An event without session id or with an unencodable payload raises ConfigurationError and
    writes nothing."""
    backend = await h.backend()
    session = h.session()
    sink = h.sink(backend)
    try:
        await sink.send(StreamEvent("tool_start", "run-1", ""))
    except ConfigurationError as exc:
        assert "stream event missing session id" in str(exc)
    else:
        raise AssertionError("send without a session id did not raise ConfigurationError")
    try:
        await sink.send(h.event(session, payload={"ok": 1, "bad": {1, 2}}))
    except ConfigurationError as exc:
        assert "payload.bad" in str(exc) and "set" in str(exc), str(exc)
    else:
        raise AssertionError("send with an unencodable payload did not raise ConfigurationError")
    good = await sink.send(h.event(session, 7))
    records = await h.read_all(backend, good.stream_id)
    assert [r.entry_id for r in records] == [good.entry_id], records


@check("1", "fan_out")
async def on_published_error_reaches_caller(h: Harness) -> None:
    """An on_published error is raised by send() as that error, and the entry is written."""
    backend = await h.backend()
    seen = []

    class AfterPublish(Exception):
        pass

    def fail(published: Any) -> None:
        seen.append(published)
        raise AfterPublish("after-publish")

    session = h.session()
    try:
        await h.sink(backend, on_published=fail).send(h.event(session))
    except AfterPublish:
        pass
    else:
        raise AssertionError("on_published's error was not raised by send()")
    (published,) = seen
    records = await h.read_all(backend, published.stream_id)
    assert [r.entry_id for r in records] == [published.entry_id]


@check("2", "fan_out")
async def entry_ids_increase_in_send_order(h: Harness) -> None:
    """Entry ids are unique, returned by send(), and read back in send order."""
    backend = await h.backend()
    published = await h.publish(backend, h.session(), 30)
    ids = [p.entry_id for p in published]
    assert len(set(ids)) == len(ids)
    records = await h.read_all(backend, published[0].stream_id)
    assert [r.entry_id for r in records] == ids
    # Ids are opaque: their order is the backend's, seen in the read order above. Where the
    # backend tells entries' times, those follow that order too.
    if h.capabilities.entry_times:
        timed = cast(TimedBackend, backend)
        times = [await timed.entry_time(published[0].stream_id, i) for i in ids]
        assert times == sorted(times), f"entry times decrease in send order: {times}"


@check("3", "fan_out")
async def concurrent_sends_keep_per_task_order(h: Harness) -> None:
    """Concurrent send() calls all succeed with distinct ids; each task's events stay in order."""
    backend = await h.backend()
    sink = h.sink(backend)
    session = h.session()
    results: dict[int, list[str]] = {task: [] for task in range(8)}

    async def producer(task: int) -> None:
        for i in range(25):
            published = await sink.send(h.event(session, i, payload={"task": task, "i": i}))
            results[task].append(published.entry_id)

    async with anyio.create_task_group() as tg:
        for task in results:
            tg.start_soon(producer, task)
    all_ids = [i for ids in results.values() for i in ids]
    assert len(set(all_ids)) == 200
    records = await h.read_all(backend, f"session/{session}")
    assert len(records) == 200
    by_task: dict[int, list[int]] = {}
    for record in records:
        payload = orjson.loads(record.payload or b"")["payload"]
        by_task.setdefault(payload["task"], []).append(payload["i"])
    assert all(order == list(range(25)) for order in by_task.values()), by_task
    for task, ids in results.items():
        read_order = [r.entry_id for r in records if r.entry_id in set(ids)]
        assert read_order == ids, f"task {task}: ids returned out of write order"


@check("3", "fan_out")
async def send_many_keeps_order(h: Harness) -> None:
    """send_many() writes a batch across streams in order and returns each entry's id."""
    backend = await h.backend()
    first, second = h.session(), h.session()
    events = [h.event(first if i % 3 else second, i) for i in range(20)]
    published = await h.sink(backend).send_many(events)
    assert [p.event for p in published] == events
    for session in (first, second):
        records = await h.read_all(backend, f"session/{session}")
        expected = [p.entry_id for p in published if p.stream_id == f"session/{session}"]
        assert [r.entry_id for r in records] == expected


@check("4")
async def closed_sink_refuses_sends(h: Harness) -> None:
    """After aclose() (idempotent), send() and send_many() raise SinkClosedError."""
    backend = await h.backend()
    sink = h.sink(backend)
    await sink.aclose()
    await sink.aclose()
    for attempt in (sink.send(h.event(h.session())), sink.send_many([h.event(h.session())])):
        try:
            await attempt
        except SinkClosedError:
            continue
        raise AssertionError("send after aclose() did not raise SinkClosedError")


@check("5", "trim", "fan_out")
async def streams_are_trimmed(h: Harness) -> None:
    """A stream is kept near its max length: old entries go, the newest stay."""
    backend = await h.backend(maxlen=10)
    session = h.session()
    sent = await h.sink(backend).send_many([h.event(session, i) for i in range(500)])
    records = await h.read_all(backend, sent[0].stream_id)
    assert 10 <= len(records) < 250, f"{len(records)} entries kept with maxlen=10"
    assert records[-1].entry_id == sent[-1].entry_id


# -- start positions ------------------------------------------------------------------------------


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


# -- groups and fan-out ---------------------------------------------------------------------------


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


# -- acknowledgement ------------------------------------------------------------------------------


@check("8", "consumer_groups", "redelivery")
async def exception_leaves_event_pending(h: Harness) -> None:
    """Auto mode acks an event only once the application is done with it: leaving the loop by an
    exception leaves the current and the buffered events pending, redelivered with count 2."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    group = h.name("g")
    ids = [p.entry_id for p in await h.publish(backend, session, 3)]

    class HandlerFailed(Exception):
        pass

    try:
        async with h.subscriber(backend, group=group, buffer=8).subscribe(stream) as sub:
            async for event in sub:
                if event.entry_id == ids[1]:
                    raise HandlerFailed
    except HandlerFailed:
        pass
    async with h.subscriber(backend, group=group).subscribe_manual(stream) as manual:
        redelivered = await h.take(manual, 2)
        assert [(d.entry_id, d.delivery_count) for d in redelivered] == [(ids[1], 2), (ids[2], 2)]
        for delivery in redelivered:
            await delivery.ack()
        await h.nothing_within(manual, h.timing.grace * 3)


@check("8", "consumer_groups", "redelivery")
async def leaving_normally_acks(h: Harness) -> None:
    """Leaving the loop normally (break) acknowledges the current event."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    group = h.name("g")
    await h.publish(backend, session, 1)
    async with h.subscriber(backend, group=group).subscribe(stream) as sub:
        async for _event in sub:
            break
    async with h.subscriber(backend, group=group).subscribe(stream) as sub:
        await h.nothing_within(sub, h.timing.grace * 3)


@check("9", "consumer_groups", "redelivery")
async def manual_ack_is_idempotent(h: Harness) -> None:
    """ack() twice is fine and an acked entry is never redelivered; ack after the subscription
    closed raises AckError and the entry stays pending."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    group = h.name("g")
    ids = [p.entry_id for p in await h.publish(backend, session, 2)]
    async with h.subscriber(backend, group=group).subscribe_manual(stream) as sub:
        first, second = await h.take(sub, 2)
        await first.ack()
        await first.ack()
        assert first.settled and first.delivery_count == 1
    try:
        await second.ack()
    except AckError as exc:
        assert "closed" in str(exc)
    else:
        raise AssertionError("ack after the subscription closed did not raise AckError")
    async with h.subscriber(backend, group=group).subscribe_manual(stream) as sub:
        (again,) = await h.take(sub, 1)
        assert (again.entry_id, again.delivery_count) == (ids[1], 2)
        await again.ack()
        await h.nothing_within(sub, h.timing.grace * 3)


@check("9", "consumer_groups", "redelivery")
async def nack_redelivers_now(h: Harness) -> None:
    """nack() makes the entry available again at once, with delivery count 2."""
    backend = await h.backend()
    session = h.session()
    (sent,) = await h.publish(backend, session, 1)
    subscriber = h.subscriber(backend, ack_grace_period=h.timing.long_grace)
    async with subscriber.subscribe_manual(f"session/{session}") as sub:
        (first,) = await h.take(sub, 1)
        await first.nack()
        with anyio.fail_after(2):
            (again,) = await h.take(sub, 1)
        assert (again.entry_id, again.delivery_count) == (sent.entry_id, 2)
        await again.ack()


@check("9", "consumer_groups", "fan_out")
async def term_dead_letters_with_provenance(h: Harness) -> None:
    """term(reason) moves the entry to the dead-letter stream with its provenance and acks it."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    (sent,) = await h.publish(backend, session, 1)
    subscriber = h.subscriber(backend)
    async with subscriber.subscribe_manual(stream) as sub:
        (delivery,) = await h.take(sub, 1)
        await delivery.term("tool result rejected")
        await h.nothing_within(sub, h.timing.grace * 3)
        consumer = sub.consumer
    (record,) = await h.read_all(backend, f"{stream}:dlq")
    assert record.name == DEAD_LETTER_EVENT
    letter = decode_dead_letter(record.payload or b"")
    assert (letter.origin_stream, letter.entry_id, letter.group, letter.consumer) == (
        stream,
        sent.entry_id,
        subscriber.options.group,
        consumer,
    )
    assert letter.attempts == 1 and letter.reason == "tool result rejected"
    assert letter.event_name == "tool_start"
    assert letter.payload == delivery.raw_payload


@check("9", "consumer_groups", "redelivery")
async def in_progress_renews_the_lease(h: Harness) -> None:
    """in_progress() keeps a slow handler's entry from being redelivered past the grace period."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    group = h.name("g")
    await h.publish(backend, session, 1)
    async with h.subscriber(backend, group=group).subscribe_manual(stream) as slow:
        (delivery,) = await h.take(slow, 1)
        # The second consumer joins only now, so it cannot have been the one to read the entry.
        other_subscriber = h.subscriber(backend, group=group, start=StartPosition.newest())
        async with other_subscriber.subscribe_manual(stream) as other:

            async def keep_alive() -> None:
                for _ in range(12):
                    await delivery.in_progress()
                    await anyio.sleep(h.timing.grace / 3)

            async with anyio.create_task_group() as tg:
                tg.start_soon(keep_alive)
                await h.nothing_within(other, h.timing.grace * 4)
                tg.cancel_scope.cancel()
        await delivery.ack()


# -- redelivery -----------------------------------------------------------------------------------


@check("10", "consumer_groups", "redelivery")
async def unacked_entries_are_redelivered(h: Harness) -> None:
    """An entry not acknowledged within ack_grace_period is delivered again with its count raised."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    group = h.name("g")
    (sent,) = await h.publish(backend, session, 1)
    async with h.subscriber(backend, group=group).subscribe_manual(stream) as first:
        (held,) = await h.take(first, 1)
        assert held.delivery_count == 1
        second_subscriber = h.subscriber(backend, group=group, start=StartPosition.newest())
        async with second_subscriber.subscribe_manual(stream) as second:
            got: list[Delivery] = []

            async def wait_on(sub: Any) -> None:
                got.extend(await h.take(sub, 1))
                tg.cancel_scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(wait_on, first)
                tg.start_soon(wait_on, second)
            (again,) = got
            assert (again.entry_id, again.delivery_count) == (sent.entry_id, 2)
            await again.ack()


@check("10", "consumer_groups", "own_pending")
async def restarted_consumer_gets_its_pending_first(h: Harness) -> None:
    """A consumer restarting under its name first gets back the entries it had not acknowledged."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    options = {
        "group": h.name("g"),
        "consumer_name": h.name("c"),
        "ack_grace_period": h.timing.long_grace,
    }
    ids = [p.entry_id for p in await h.publish(backend, session, 2)]
    async with h.subscriber(backend, **options).subscribe_manual(stream) as sub:
        assert [d.entry_id for d in await h.take(sub, 2)] == ids
    (later,) = await h.publish(backend, session, 1, first=5)
    async with h.subscriber(backend, **options).subscribe_manual(stream) as sub:
        again = await h.take(sub, 3)
        assert [(d.entry_id, d.delivery_count) for d in again] == [
            (ids[0], 2),
            (ids[1], 2),
            (later.entry_id, 1),
        ]
        for delivery in again:
            await delivery.ack()


# -- poison ---------------------------------------------------------------------------------------


@check("11", "consumer_groups", "fan_out")
async def undecodable_entries_do_not_stop_auto_mode(h: Harness) -> None:
    """In auto mode an undecodable entry is reported, dead-lettered and acked; consumption goes on."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    await backend.append([Entry(stream, "tool_start", b"\xff\xfe not json")])
    (good,) = await h.publish(backend, session, 1)
    errors: list[StreamsinkError] = []
    async with h.subscriber(backend, on_error=errors.append).subscribe(stream) as sub:
        (event,) = await h.take(sub, 1)
        assert event.entry_id == good.entry_id
        stats = sub.statistics()
    assert stats.decode_errors == 1 and stats.dead_lettered == 1, stats
    assert any(isinstance(e, DecodeError) for e in errors), errors
    (record,) = await h.read_all(backend, f"{stream}:dlq")
    letter = decode_dead_letter(record.payload or b"")
    assert letter.payload == b"\xff\xfe not json" and "undecodable" in letter.reason


@check("11", "consumer_groups")
async def undecodable_entries_arrive_in_manual_mode(h: Harness) -> None:
    """In manual mode an undecodable entry arrives as a Delivery with decode_error set."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    await backend.append([Entry(stream, "tool_start", b"[1,2]")])
    (good,) = await h.publish(backend, session, 1)
    async with h.subscriber(backend).subscribe_manual(stream) as sub:
        bad, fine = await h.take(sub, 2)
        assert bad.event is None and isinstance(bad.decode_error, DecodeError)
        assert bad.raw_payload == b"[1,2]" and bad.name == "tool_start"
        assert fine.entry_id == good.entry_id and fine.event is not None
        await bad.term("undecodable")
        await fine.ack()


@check("11", "consumer_groups", "redelivery", "fan_out")
async def max_deliveries_dead_letters(h: Harness) -> None:
    """After max_deliveries unacknowledged deliveries the entry goes to the dead-letter stream."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    (sent,) = await h.publish(backend, session, 1)
    subscriber = h.subscriber(backend, max_deliveries=2)
    async with subscriber.subscribe_manual(stream) as sub:
        counts = []
        for delivery in await h.take(sub, 2):
            counts.append(delivery.delivery_count)
            await delivery.nack()
        assert counts == [1, 2], counts
        await h.nothing_within(sub, h.timing.grace * 3)
        assert sub.statistics().dead_lettered == 1, sub.statistics()
    (record,) = await h.read_all(backend, f"{stream}:dlq")
    letter = decode_dead_letter(record.payload or b"")
    assert letter.entry_id == sent.entry_id and letter.attempts == 2
    assert "max_deliveries=2" in letter.reason


# -- ending ---------------------------------------------------------------------------------------


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


# -- entries trimmed before they were read ------------------------------------------------------

_TRIM_MAXLEN = 50
_TRIM_SENT = 400  # far past the max length, so even approximate trimming trims


async def _lagging_behind_trimming(h: Harness, group: bool) -> None:
    backend = await h.backend(maxlen=_TRIM_MAXLEN)
    session = h.session()
    errors: list[StreamsinkError] = []
    options: dict[str, Any] = {"buffer": 1, "fetch_count": 1, "on_error": errors.append}
    if not group:
        options["group"] = None
    got: list[StreamEvent] = []
    async with h.subscriber(backend, **options).subscribe(f"session/{session}") as sub:
        await h.publish(backend, session, 3)
        got += await h.take(sub, 1)  # the application is busy with it; reading waits meanwhile
        await h.publish(backend, session, _TRIM_SENT - 3, first=3)
        with anyio.fail_after(h.timing.timeout):
            async for event in sub:
                got.append(event)
                if event.payload["index"] == _TRIM_SENT - 1:
                    break
        stats = sub.statistics()
    indexes = [event.payload["index"] for event in got]
    assert indexes == sorted(set(indexes)), f"delivered out of order or twice: {indexes}"
    gaps = [event.gap for event in got if event.gap is not None]
    assert gaps, f"{_TRIM_SENT - len(got)} entries trimmed unread, and no gap reported"
    skipped = sum(gap.count or 0 for gap in gaps)
    assert all(gap.count is not None for gap in gaps), gaps
    assert len(got) + skipped == _TRIM_SENT, (
        f"{len(got)} delivered + {skipped} reported skipped != {_TRIM_SENT} sent: {gaps}"
    )
    assert (stats.skipped, stats.gaps) == (skipped, len(gaps)), stats
    reported = [e.gap for e in errors if isinstance(e, EntriesSkippedError)]
    assert reported == gaps, (reported, gaps)
    for event in got:
        if event.gap is not None:
            index = indexes.index(event.payload["index"])
            assert event.gap.before == event.entry_id, event.gap
            assert event.gap.after == (got[index - 1].entry_id if index else None), event.gap
            assert event.gap.stream_id == f"session/{session}"


def _reading_modes(h: Harness) -> list[dict[str, Any]]:
    """Subscriber options for each way the backend can read: fan-out reader, consumer group."""
    modes: list[dict[str, Any]] = []
    if h.capabilities.fan_out:
        modes.append({"group": None})
    if h.capabilities.consumer_groups:
        modes.append({})
    return modes


@check("16", "consumer_groups", "trim", "reports_gaps")
async def groups_report_entries_trimmed_unread(h: Harness) -> None:
    """Entries trimmed before a group read them are counted and reported: the next event
    carries the gap, on_error gets EntriesSkippedError, statistics count them."""
    await _lagging_behind_trimming(h, group=True)


@check("16", "fan_out", "trim", "reports_gaps")
async def readers_report_entries_trimmed_unread(h: Harness) -> None:
    """Entries trimmed before a fan-out reader read them are counted and reported as for a group."""
    await _lagging_behind_trimming(h, group=False)


@check("16", "trim", "reports_gaps")
async def resuming_from_a_trimmed_id_is_reported(h: Harness) -> None:
    """A group or reader opened after(id) whose id trimming has overtaken is told so on its
    first event (the count may be unknown: None), and nothing when the id is still there."""
    backend = await h.backend(maxlen=_TRIM_MAXLEN)
    session = h.session()
    stream = f"session/{session}"
    sent = await h.sink(backend).send_many([h.event(session, i) for i in range(_TRIM_SENT)])
    kept = await h.read_all(backend, stream)
    assert len(kept) < _TRIM_SENT, "nothing was trimmed"
    for options in _reading_modes(h):
        trimmed_start = StartPosition.after(sent[0].entry_id)
        async with h.subscriber(backend, start=trimmed_start, **options).subscribe(stream) as sub:
            (event,) = await h.take(sub, 1)
        assert event.entry_id == kept[0].entry_id
        gap = event.gap
        assert gap is not None, f"resume from a trimmed id was not reported ({options})"
        assert (gap.after, gap.before) == (sent[0].entry_id, kept[0].entry_id), gap
        assert gap.count in (None, _TRIM_SENT - len(kept) - 1), gap
        kept_start = StartPosition.after(kept[0].entry_id)
        async with h.subscriber(backend, start=kept_start, **options).subscribe(stream) as sub:
            (event,) = await h.take(sub, 1)
        assert event.entry_id == kept[1].entry_id
        assert event.gap is None, f"a resume from an id still in the stream reported {event.gap}"


@check("16", "trim", "reports_gaps")
async def keeping_up_with_a_trimmed_stream_reports_nothing(h: Harness) -> None:
    """No gap is reported for entries trimmed after they were read, nor for entries trimmed
    before a group or reader started at the oldest entry."""
    backend = await h.backend(maxlen=_TRIM_MAXLEN)
    session = h.session()
    stream = f"session/{session}"
    await h.sink(backend).send_many([h.event(session, i) for i in range(_TRIM_SENT)])
    for options in _reading_modes(h):
        errors: list[StreamsinkError] = []
        subscriber = h.subscriber(backend, on_error=errors.append, **options)
        async with subscriber.subscribe(stream) as sub:
            kept = len(await h.read_all(backend, stream))
            got = await h.take(sub, kept)
            for i in range(_TRIM_SENT, _TRIM_SENT + 2 * _TRIM_MAXLEN):
                await h.sink(backend).send(h.event(session, i))
                got += await h.take(sub, 1)
            stats = sub.statistics()
        assert [event.gap for event in got if event.gap is not None] == []
        assert (stats.gaps, stats.skipped) == (0, 0), stats
        assert not [e for e in errors if isinstance(e, EntriesSkippedError)], errors


# -- topics (pulse field t) ---------------------------------------------------------------------

_TOPICS: list[str | None] = ["ops", "audit", None, "devops", "ops"]


async def _publish_topics(h: Harness, backend: Backend, session: str) -> list[str]:
    """``_TOPICS`` as entries of ``session/<session>``, payload index = position; their ids."""
    sink = h.sink(backend, topic=event_topic)
    events = [h.event(session, i, topic=topic) for i, topic in enumerate(_TOPICS)]
    return [published.entry_id for published in await sink.send_many(events)]


@check("17", "fan_out")
async def sinks_write_derived_topics(h: Harness) -> None:
    """SinkOptions.topic's result is each entry's topic (none for None, and by default), read
    back by readers and carried by received events."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    ids = await _publish_topics(h, backend, session)
    await h.sink(backend).send(h.event(session, 5, topic="ignored"))  # the default: no topic
    await h.sink(backend, topic=lambda event: "t-6").send(h.event(session, 6))
    records = await h.read_all(backend, stream)
    assert [r.topic for r in records] == [*_TOPICS, None, "t-6"], records
    assert [r.entry_id for r in records][: len(ids)] == ids
    async with h.subscriber(backend, group=None).subscribe(stream) as sub:
        received = await h.take(sub, len(records))
    assert [event.topic for event in received] == [*_TOPICS, None, "t-6"], received


@check("17")
async def subscriptions_filter_by_topic(h: Harness) -> None:
    """Groups and readers hand out only entries whose topic is the ``topic`` option exactly, or
    matches ``topic_pattern`` anywhere (an entry without topic has topic ""); ``topic`` wins;
    statistics count what was filtered out."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    await _publish_topics(h, backend, session)
    cases: list[tuple[dict[str, str], list[int]]] = [
        ({"topic": "ops"}, [0, 4]),
        ({"topic_pattern": "ops"}, [0, 3, 4]),
        ({"topic_pattern": "^$"}, [2]),
        ({"topic": "audit", "topic_pattern": "ops"}, [1]),
    ]
    for mode in _reading_modes(h):
        for filters, expected in cases:
            options = {**mode, **filters}
            async with h.subscriber(backend, **options).subscribe(stream) as sub:
                got = await h.take(sub, len(expected))
                await h.nothing_within(sub, h.timing.claim * 4)
            indexes = [event.payload["index"] for event in got]
            assert indexes == expected, f"{options}: got {indexes}, expected {expected}"
            stats = sub.statistics()
            assert stats.filtered == len(_TOPICS) - len(expected), (options, stats)


@check("17", "consumer_groups")
async def groups_acknowledge_filtered_entries(h: Harness) -> None:
    """A group acknowledges the entries its topic filter drops (pulse leaves them pending for
    ever), in auto and manual mode: nothing stays pending once the application settled what it
    got."""
    backend = await h.backend()
    for manual in (False, True):
        session = h.session()
        stream = f"session/{session}"
        await _publish_topics(h, backend, session)
        group, consumer = h.name("group"), h.name("consumer")
        subscriber = h.subscriber(backend, group=group, consumer_name=consumer, topic="ops")
        if manual:
            async with subscriber.subscribe_manual(stream) as deliveries:
                for delivery in await h.take(deliveries, 2):
                    await delivery.ack()
                await h.nothing_within(deliveries, h.timing.claim * 4)
            stats = deliveries.statistics()
        else:
            async with subscriber.subscribe(stream) as events:
                await h.take(events, 2)
                await h.nothing_within(events, h.timing.claim * 4)
            stats = events.statistics()
        assert (stats.filtered, stats.acknowledged) == (3, 5), (manual, stats)
        if not h.capabilities.own_pending:
            continue  # the acknowledgements counted above are all this backend lets us see
        handle = await backend.open_group_consumer(stream, group, consumer, StartPosition.oldest())
        try:
            pending = await handle.read_own_pending(None, 100)
        finally:
            await handle.aclose()
        assert not pending, f"filtered entries left pending (manual={manual}): {pending}"
