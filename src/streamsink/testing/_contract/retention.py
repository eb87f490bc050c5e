"""Rules 5 and 16 of docs/contract.md for retention beyond ``maxlen``: streams bounded by age
(``Capabilities.max_age``) and expired when idle (``Capabilities.idle_ttl``), and entries aged
out before they were read reported like trimmed ones."""

from __future__ import annotations

from typing import Any

import anyio

from ..._events import StreamEvent
from ..._exceptions import StreamsinkError
from ...backend import Backend
from .._harness import Harness
from ._registry import check
from .trimming import assert_skips_reported

__all__: list[str] = []

_MAX_AGE = 0.3  # seconds: short, so a check waits a fraction of a second
_IDLE_TTL = 0.3
_OLD = 300  # entries sent before they age out: several storage nodes (Redis trims whole nodes)


async def _aged_out(h: Harness, backend: Backend, stream: str) -> list[str]:
    """The ids the stream keeps once entries older than max_age are gone. Redis and memory://
    trim on the append that follows; JetStream expires by a timer of its own, a little later:
    poll for it (failing after the timeout)."""
    with anyio.fail_after(h.timing.timeout):
        while True:
            kept = [record.entry_id for record in await h.read_all(backend, stream)]
            if len(kept) < _OLD:
                return kept
            await anyio.sleep(0.05)


@check("5", "max_age", "fan_out")
async def streams_are_trimmed_by_age(h: Harness) -> None:
    """With max_age, entries older than max_age are trimmed (on Redis and memory:// by the next
    append; a few more may be kept, by whole storage nodes) and the newer ones kept."""
    backend = await h.backend(maxlen=0, max_age=_MAX_AGE)
    session = h.session()
    stream = f"session/{session}"
    await h.sink(backend).send_many([h.event(session, i) for i in range(_OLD)])
    await anyio.sleep(_MAX_AGE * 1.5)
    young = await h.sink(backend).send_many([h.event(session, _OLD + i) for i in range(3)])
    kept = await _aged_out(h, backend, stream)
    assert kept[-3:] == [sent.entry_id for sent in young], kept[-3:]


@check("5", "idle_ttl", "fan_out")
async def idle_streams_expire(h: Harness) -> None:
    """With idle_ttl, every append keeps the stream alive that long; a stream nobody appends to
    for that long is gone with its entries."""
    backend = await h.backend(idle_ttl=_IDLE_TTL)
    session = h.session()
    stream = f"session/{session}"
    sink = h.sink(backend)
    for i in range(4):  # appends closer together than the TTL: the stream lives on
        await sink.send(h.event(session, i))
        await anyio.sleep(_IDLE_TTL / 2)
    assert len(await h.read_all(backend, stream)) == 4
    await anyio.sleep(_IDLE_TTL * 2)
    assert list(await h.read_all(backend, stream)) == [], "the idle stream did not expire"


@check("5", "idle_ttl")
async def a_subscription_outlives_its_expired_stream(h: Harness) -> None:
    """A group subscription or fan-out subscription whose stream expired under it (a group
    with it) goes on: it gets what is sent after, as after any lost group, nothing twice and
    no gap."""
    for options in h.reading_modes():
        backend = await h.backend(idle_ttl=_IDLE_TTL)
        session = h.session()
        sink = h.sink(backend)
        async with h.subscriber(backend, **options).subscribe(f"session/{session}") as sub:
            first = await sink.send(h.event(session, 0))
            (event,) = await h.take(sub, 1)
            assert event.entry_id == first.entry_id
            await anyio.sleep(_IDLE_TTL * 2)
            await h.nothing_within(sub, 0.1)
            later = await sink.send(h.event(session, 1))
            (event,) = await h.take(sub, 1)
            assert event.entry_id == later.entry_id, (options, event, later)
            assert event.gap is None, (options, event.gap)


async def _lagging_behind_age(h: Harness, group: bool) -> None:
    backend = await h.backend(maxlen=0, max_age=_MAX_AGE)
    session = h.session()
    errors: list[StreamsinkError] = []
    options: dict[str, Any] = {"buffer": 1, "fetch_count": 1, "on_error": errors.append}
    if not group:
        options["group"] = None
    else:
        # The check sleeps past max_age while holding entries: no redelivery meanwhile.
        options["ack_grace_period"] = h.timing.long_grace
    got: list[StreamEvent] = []
    sink = h.sink(backend)
    async with h.subscriber(backend, **options).subscribe(f"session/{session}") as sub:
        await sink.send_many([h.event(session, i) for i in range(3)])
        got += await h.take(sub, 1)  # the application is busy with it; reading waits meanwhile
        await sink.send_many([h.event(session, i) for i in range(3, _OLD)])
        await anyio.sleep(_MAX_AGE * 1.5)
        await sink.send(h.event(session, _OLD))  # this append trims what aged out
        await _aged_out(h, backend, f"session/{session}")
        with anyio.fail_after(h.timing.timeout):
            async for event in sub:
                got.append(event)
                if event.payload["index"] == _OLD:
                    break
        stats = sub.statistics()
    assert_skips_reported(got, errors, stats, _OLD + 1, "aged out")


@check("16", "consumer_groups", "max_age", "reports_gaps")
async def groups_report_entries_aged_out_unread(h: Harness) -> None:
    """Entries trimmed by max_age before a group read them are reported as maxlen trims are:
    counted, on the next event's gap, to on_error."""
    await _lagging_behind_age(h, group=True)


@check("16", "fan_out", "max_age", "reports_gaps")
async def readers_report_entries_aged_out_unread(h: Harness) -> None:
    """Entries trimmed by max_age before a fan-out reader read them are reported as for a group."""
    await _lagging_behind_age(h, group=False)
