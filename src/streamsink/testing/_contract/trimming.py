"""Rule 16 of docs/contract.md: nothing is trimmed away silently."""

from __future__ import annotations

from typing import Any

import anyio

from ..._consuming import SubscriptionStatistics
from ..._events import StreamEvent
from ..._exceptions import (
    EntriesSkippedError,
    StreamsinkError,
)
from ...backend import StartPosition
from .._harness import Harness
from ._registry import check

__all__: list[str] = []


_TRIM_MAXLEN = 50
_TRIM_SENT = 400  # far past the max length, so even approximate trimming trims


def assert_skips_reported(
    got: list[StreamEvent],
    errors: list[StreamsinkError],
    stats: SubscriptionStatistics,
    sent: int,
    lost: str,
) -> list[Any]:
    """Of ``sent`` events, ``got`` arrived in order, once each, and every one ``lost`` (trimmed,
    aged out) before it was read is counted by exactly the gaps the events carry, the
    subscription's statistics and the EntriesSkippedError in ``errors``. The indexes of ``got``.
    """
    indexes = [event.payload["index"] for event in got]
    assert indexes == sorted(set(indexes)), f"delivered out of order or twice: {indexes}"
    gaps = [event.gap for event in got if event.gap is not None]
    assert gaps, f"{sent - len(got)} entries {lost} unread, and no gap reported"
    assert all(gap.count is not None for gap in gaps), gaps
    skipped = sum(gap.count or 0 for gap in gaps)
    assert len(got) + skipped == sent, (
        f"{len(got)} delivered + {skipped} reported skipped != {sent} sent: {gaps}"
    )
    assert (stats.skipped, stats.gaps) == (skipped, len(gaps)), stats
    reported = [e.gap for e in errors if isinstance(e, EntriesSkippedError)]
    assert reported == gaps, (reported, gaps)
    return indexes


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
    indexes = assert_skips_reported(got, errors, stats, _TRIM_SENT, "trimmed")
    for event in got:
        if event.gap is not None:
            index = indexes.index(event.payload["index"])
            assert event.gap.before == event.entry_id, event.gap
            assert event.gap.after == (got[index - 1].entry_id if index else None), event.gap
            assert event.gap.stream_id == f"session/{session}"


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
    for options in h.reading_modes():
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
    for options in h.reading_modes():
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
