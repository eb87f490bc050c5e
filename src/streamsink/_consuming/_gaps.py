"""``Gaps``: entries trimmed before a subscription read them, counted, reported and marked on the
next item handed out (docs/contract.md rule 16)."""

from __future__ import annotations

import copy
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

    def attach(self, item: Any) -> Any:
        """``item`` (the first of a batch about to be handed out) marked with the pending gap:
        in auto mode a copy (the event may be one that other fan-out readers hand out too,
        which must not carry this subscription's gap)."""
        gap, self.pending = self.pending, None
        if self._manual:
            item.gap = gap
            return item
        entry_id, event = item
        if type(event) is StreamEvent:
            event = copy.copy(event)
            set_event_gap(event, gap)
        return (entry_id, event)
