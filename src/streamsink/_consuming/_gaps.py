"""``Gaps``: entries trimmed before a subscription read them, counted, reported and marked on the
next item handed out (docs/contract.md rule 16)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._events import StreamEvent, set_event_gap
from .._exceptions import EntriesSkippedError, StreamsinkError
from ..backend import Gap
from ._statistics import Counters

__all__ = ["Gaps"]


class Gaps:
    """The losses one subscription found, and the one not yet attached to an item."""

    __slots__ = ("_counters", "_manual", "_report", "pending")

    def __init__(
        self, counters: Counters, report: Callable[[StreamsinkError], None], *, manual: bool
    ) -> None:
        self._counters = counters
        self._report = report
        self._manual = manual
        #: found, not yet attached to an item handed out
        self.pending: Gap | None = None

    def note(self, gap: Gap) -> None:
        """Count and report entries lost before this subscription read them; the next item
        handed out carries the gap (``StreamEvent.gap`` / ``Delivery.gap``)."""
        counters = self._counters
        counters.gaps += 1
        if gap.count:
            counters.skipped += gap.count
        self._report(EntriesSkippedError(gap))
        pending = self.pending
        if pending is not None:  # two losses before anything was handed out: one hole
            count = (
                None if pending.count is None or gap.count is None else pending.count + gap.count
            )
            gap = Gap(stream_id=gap.stream_id, after=pending.after, before=gap.before, count=count)
        self.pending = gap

    def attach(self, item: Any) -> None:
        """Mark ``item`` (the first of a batch about to be handed out) with the pending gap."""
        gap, self.pending = self.pending, None
        if self._manual:
            item.gap = gap
            return
        event = item[1]
        if type(event) is StreamEvent:
            set_event_gap(event, gap)
