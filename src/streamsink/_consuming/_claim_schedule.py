"""``ClaimSchedule``: when a group's pending entries are next looked at, and whether a claim is
wanted, on a backend that summarizes its pending entries (``Capabilities.pending_summary``).

An entry can be claimed once it has been idle for the grace period. A summary (how many entries
are pending, how long the longest-idle one has been idle) therefore says when the next claim can
first find something:

- nothing pending: nothing can be claimable before a grace period from now (whatever becomes
  pending later is idle for less), so the next look is after a period that starts at the claim
  interval and grows fourfold each time up to the grace period (short at first, for what a
  process that nacked and then died leaves claimable at once), ending on a grid of the clock
  (:data:`ALIGN`), so that a process's idle groups look at the same moments and a backend can
  send their summaries together; a look that comes early only finds less;
- something pending, idle for less than the grace period: the next look is the moment it
  becomes idle past the grace period (a touch or an ack meanwhile only makes that look find
  nothing to do);
- something idle past the grace period, or a backend that could not tell: a claim now;
- a nack in this process: a claim now (the entry is claimable at once);
- a claim that took a full batch: another claim now (more may wait); one that took less: a look
  now; one that took nothing although the summary said something was idle (entries a backend
  leaves to their owner): a look after a claim interval, so that such entries cost what they
  cost before the summaries, not a loop.

Pure bookkeeping on an injected clock (seconds): no I/O, no sleeping, so the rules are tested on
a :class:`~streamsink.testing.FakeClock`. :mod:`._claim_group` runs it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

from ..backend import PendingSummary

__all__ = ["ALIGN", "GROWTH", "SLACK", "ClaimSchedule"]

#: Added to the moment an entry turns claimable: backends count idle time in whole milliseconds
#: on their own clock, and a look that comes a hair early would find nothing and look again.
SLACK: Final = 0.01

#: How much longer each look that finds nothing pending waits than the one before (up to the
#: grace period): an idle group reaches one look per grace period after a few looks.
GROWTH: Final = 4.0

#: Seconds of the grid that the next look after one finding nothing pending is brought forward
#: to (a quarter of its period if that is shorter): at most this much early.
ALIGN: Final = 1.0


class ClaimSchedule:
    """When the next look at a group's pending entries is due (``next_check``, on the clock) and
    whether a claim is wanted now (``claim_wanted``). Starts with a look due at once."""

    __slots__ = ("_grace", "_interval", "_now", "_period", "claim_wanted", "next_check")

    def __init__(self, grace: float, interval: float, clock: Callable[[], float]) -> None:
        """``grace``: the ack grace period (the ``min_idle`` of claims); ``interval``: the claim
        interval, the shortest period between looks; ``clock``: monotonic seconds.

        :raises ValueError: ``grace`` or ``interval`` is not a positive finite number.
        """
        for name, value in (("grace", grace), ("interval", interval)):
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"ClaimSchedule {name} must be positive seconds, got {value!r}")
        self._grace = float(grace)
        self._interval = min(float(interval), self._grace)
        self._now = clock
        self._period = self._interval
        #: when the next summary is due (clock seconds)
        self.next_check = clock()
        #: a claim is due now; whoever makes it clears it (:meth:`take_claim`)
        self.claim_wanted = False

    def check_due(self) -> bool:
        """Whether a summary is due now."""
        return self._now() >= self.next_check

    def delay(self) -> float:
        """Seconds until the next summary is due (0 when due)."""
        return max(0.0, self.next_check - self._now())

    def checked(self, summary: PendingSummary) -> bool:
        """A summary was taken now; schedule what it calls for. True when a claim is wanted."""
        now = self._now()
        idle = summary.oldest_idle
        if summary.count <= 0:
            self.next_check = _aligned(now, self._period)
            self._period = min(self._period * GROWTH, self._grace)
            return self.claim_wanted
        self._period = self._interval
        if idle is None or idle >= self._grace:
            self.claim_wanted = True
            self.next_check = now + self._interval
        else:
            self.next_check = now + (self._grace - max(idle, 0.0)) + SLACK
        return self.claim_wanted

    def nacked(self) -> None:
        """Entries were given back in this process: claimable at once."""
        self.claim_wanted = True
        self._period = self._interval

    def take_claim(self) -> bool:
        """Take the wanted claim (True), if there is one, for the caller to make now."""
        if not self.claim_wanted:
            return False
        self.claim_wanted = False
        return True

    def claimed(self, taken: int, full: bool) -> None:
        """The claim taken with :meth:`take_claim` moved ``taken`` entries; ``full``: as many as
        it asked for."""
        now = self._now()
        self._period = self._interval
        if full:
            self.claim_wanted = True
        elif taken:
            self.next_check = now
        else:
            self.next_check = now + self._interval

    def failed(self) -> None:
        """A summary or claim failed (the backend unreachable, say): look again after a claim
        interval rather than at once."""
        self.next_check = self._now() + self._interval


def _aligned(now: float, period: float) -> float:
    """``now + period`` brought forward to the grid of :data:`ALIGN` (or ``period / 4``)."""
    step = min(ALIGN, period / 4)
    return max(math.floor((now + period) / step) * step, now + period - step)
