"""Rules 1-5 of docs/contract.md: what ``send`` writes, entry ids, concurrency and order,
closing a sink, bounded streams."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import anyio
import orjson

from ..._envelope import decode_envelope
from ..._events import StreamEvent
from ..._exceptions import (
    ConfigurationError,
    SinkClosedError,
)
from ...backend import TimedBackend
from .._harness import Harness
from ._registry import check

__all__: list[str] = []


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
