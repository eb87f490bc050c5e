"""``ClaimGroup``: the claims of one consumer group on one stream, shared by the subscriptions of
that group in this process, on a backend that summarizes its pending entries
(``Capabilities.pending_summary``).

Without it every subscription scans for idle entries every claim interval, and its reads block
at most that long, so an idle group costs a scan and a read per subscription per interval. With
it the subscriptions of a group (same backend, stream, group, grace period and claim interval)
join one ``ClaimGroup``, which:

- has one of them, the *checker* (the oldest member), ask for a summary when the
  :class:`~._claim_schedule.ClaimSchedule` says so, in a task beside that subscription's reads
  (on a backend whose blocking reads have a connection of their own, concurrently with them);
- when a claim is wanted (the summary says something is idle past the grace period, a nack, a
  full claim), has it made by the next member back at its read, which has room for what it
  claims by construction (one whose application keeps up first); when none comes back within
  :data:`TAKE_WAIT` (all wait in reads: the group is idle), the read of one is cancelled and
  that member claims, for itself. Claimed
  entries must go to the subscription whose consumer claimed them: they are that consumer's
  pending entries now, and only it can renew (``touch``) them. When no member is reading (all
  wait for their application), the first one to come back to its read claims;
- lets every member's read block up to ``max_block``: no read has to return for a scan.

A member leaving hands the checker's part to the next oldest. Pure in-process coordination: the
backend calls are the members' own (through their :class:`~._calls.BackendCalls`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import anyio

from .._exceptions import StreamsinkError, SubscriptionError
from ..backend import Backend, PendingSummary, StreamDestroyedError
from ..lowlevel import clock as loop_clock
from ._claim_schedule import ClaimSchedule

__all__ = ["TAKE_WAIT", "ClaimGroup", "Member", "joined", "runs_on_loop_clock"]

#: Seconds a wanted claim waits for a member to come back to its read and take it, before one
#: waiting in a read is woken for it (a quarter of the claim interval if that is shorter, so that
#: a redelivery still comes within the grace period plus one claim interval).
TAKE_WAIT = 0.05

log = logging.getLogger("streamsink")


class Member(Protocol):
    """A subscription's pump, as a :class:`ClaimGroup` sees it."""

    #: True while it waits in a read that :meth:`wake` may cancel
    reading: bool

    @property
    def hungry(self) -> bool:
        """Its application has taken everything read so far (it keeps up): the best place for
        claimed entries. One that has not may be stuck on an event, behind which they would
        wait (and be claimed back, again and again)."""
        ...

    def wake(self) -> None:
        """Cancel the read it waits in, so that it claims."""
        ...


class ClaimGroup:
    """See the module docstring. Made and shared by :func:`joined`."""

    __slots__ = ("_checker", "_kick", "_members", "_most", "_take_wait", "schedule")

    def __init__(
        self, grace: float, interval: float, clock: Callable[[], float], *, real: bool
    ) -> None:
        """``real``: ``clock`` is the event loop's, whose seconds a sleep can wait out; on any
        other clock (a test's fake one) the checker looks at the schedule every ``interval``."""
        self.schedule = ClaimSchedule(grace, interval, clock)
        self._most = math.inf if real else interval
        self._take_wait = min(TAKE_WAIT, interval / 4)
        # Members in joining order; each one's event is set when it becomes the checker.
        self._members: dict[Member, anyio.Event] = {}
        self._checker: Member | None = None
        self._kick = anyio.Event()

    @property
    def members(self) -> int:
        """How many subscriptions share it."""
        return len(self._members)

    def is_checker(self, member: Member) -> bool:
        return self._checker is member

    def _join(self, member: Member) -> anyio.Event:
        elected = self._members[member] = anyio.Event()
        if self._checker is None:
            self._elect()
        return elected

    def _leave(self, member: Member) -> None:
        self._members.pop(member, None)
        if self._checker is member:
            self._checker = None
            self._elect()
        # Someone else must make a claim the leaver would have made.
        self.kick()

    def _elect(self) -> None:
        for member, elected in self._members.items():
            self._checker = member
            elected.set()
            self.kick()
            return

    def kick(self) -> None:
        """Make the checker look at the schedule again (it changed)."""
        self._kick.set()

    def nacked(self) -> None:
        """A member gave entries back: have them claimed now."""
        self.schedule.nacked()
        self.kick()

    def _wake_one(self) -> bool:
        """Wake a member waiting in a read to make the wanted claim, a hungry one first, the
        checker first among equals; False when no member is reading."""
        checker = self._checker
        order = [checker, *self._members] if checker is not None else list(self._members)
        for hungry in (True, False):
            for member in order:
                if member.reading and (member.hungry or not hungry):
                    member.wake()
                    return True
        return False

    def take_claim(self, member: Member) -> bool:
        """Whether ``member``, about to read, is to make the wanted claim now (then it must
        report it with :meth:`claimed`). Not while a hungry member is woken for it."""
        schedule = self.schedule
        if not schedule.claim_wanted:
            return False
        if not member.hungry and any(
            other.reading and other.hungry for other in self._members if other is not member
        ):
            return False
        return schedule.take_claim()

    def claimed(self, taken: int, full: bool) -> None:
        """A member made the claim it took from the schedule."""
        self.schedule.claimed(taken, full)
        self.kick()

    async def run_checks(self, summarize: Callable[[], Awaitable[PendingSummary]]) -> None:
        """The checker's loop (until cancelled): ask ``summarize`` when the schedule says so,
        and have a member claim when it calls for a claim. A failed summary is logged (the
        member's calls have reported it) and tried again a claim interval later.

        :raises StreamDestroyedError: the stream was destroyed (the caller ends quietly).
        :raises SubscriptionError: the backend stayed unreachable past ``reconnect_timeout``.
        """
        schedule = self.schedule
        while True:
            if schedule.claim_wanted:
                # A member coming back to its read takes the claim (a busy group's do so all the
                # time); only when none does is one woken, by cancelling its read: a read
                # cancelled while entries arrive would lose its reply to a recovery.
                deadline = anyio.current_time() + self._take_wait
                while schedule.claim_wanted and (left := deadline - anyio.current_time()) > 0:
                    await self._wait(left)
                if schedule.claim_wanted and self._wake_one():
                    await self._wait(self._take_wait)
                continue
            delay = schedule.delay()
            if delay > 0:
                await self._wait(delay)
                continue
            try:
                summary = await summarize()
            except (StreamDestroyedError, SubscriptionError):
                raise
            except StreamsinkError as exc:
                log.debug("pending summary failed, looked at again later: %s", exc)
                schedule.failed()
                continue
            schedule.checked(summary)

    async def _wait(self, delay: float | None) -> None:
        kick = self._kick
        if kick.is_set():
            self._kick = kick = anyio.Event()
            return
        with anyio.move_on_after(min(math.inf if delay is None else delay, self._most)):
            await kick.wait()
        if kick.is_set():
            self._kick = anyio.Event()


def runs_on_loop_clock(clock: Callable[[], float]) -> bool:
    """Whether ``clock`` is the running event loop's (:func:`streamsink.lowlevel.clock`), so
    that its seconds can be waited out by sleeping. Call it in the event loop."""
    return bool(clock == loop_clock())


# One ClaimGroup per (backend, stream, group, grace, interval, clock) of this process; the
# backend's id stands for it (backends need not be hashable) while its group holds it.
_GROUPS: dict[tuple[Any, ...], tuple[Backend, ClaimGroup]] = {}


@contextmanager
def joined(
    member: Member,
    backend: Backend,
    stream_id: str,
    group: str,
    *,
    grace: float,
    interval: float,
    clock: Callable[[], float],
) -> Iterator[tuple[ClaimGroup, anyio.Event]]:
    """Join the ClaimGroup of ``group`` on ``stream_id`` (made on first use, dropped when its
    last member leaves) for the duration of the block; yields it and the event set once
    ``member`` is its checker."""
    key = (id(backend), stream_id, group, grace, interval, clock)
    found = _GROUPS.get(key)
    if found is None or found[0] is not backend:
        real = runs_on_loop_clock(clock)
        found = _GROUPS[key] = (backend, ClaimGroup(grace, interval, clock, real=real))
    claims = found[1]
    elected = claims._join(member)
    try:
        yield claims, elected
    finally:
        claims._leave(member)
        if not claims.members and _GROUPS.get(key) is found:
            del _GROUPS[key]
