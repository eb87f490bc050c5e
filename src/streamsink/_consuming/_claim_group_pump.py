"""``ClaimGroupPump``: the pump of a group subscription on a backend that summarizes its pending
entries (``Capabilities.pending_summary``).

Claims go through the group's :class:`~._claim_group.ClaimGroup`, shared with the other
subscriptions of the group in this process: a claim only when something pending can be idle
past the grace period, made by a member back at its read or woken in it (its read is cancelled
for it); reads block up to ``max_block``, waking early only to renew leases that are due.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import anyio

from ..backend import GroupConsumer, Record, StreamDestroyedError, SummarizingGroupConsumer
from ._claim_group import ClaimGroup, joined, runs_on_loop_clock
from ._pump import Pump
from ._settings import Settings

__all__ = ["ClaimGroupPump"]


class ClaimGroupPump(Pump):
    """A :class:`~._pump.Pump` whose group claims through a :class:`ClaimGroup` (it is one of
    the group's members)."""

    __slots__ = ("_claims", "_woke", "_woken", "reading")

    def __init__(self, settings: Settings, **parts: Any) -> None:
        """As :class:`~._pump.Pump`."""
        super().__init__(settings, **parts)
        #: the group's shared claims while the pump runs
        self._claims: ClaimGroup | None = None
        #: True while waiting in a read that :meth:`wake` cancels
        self.reading = False
        self._woken: anyio.CancelScope | None = None
        self._woke = False  # the last read was cancelled by wake()

    @property
    def claim_soon(self) -> bool:
        """Scan for idle entries at once (set after a nack)."""
        return self._claim_soon

    @claim_soon.setter
    def claim_soon(self, value: bool) -> None:
        claims = self._claims
        if value and claims is not None:
            claims.nacked()
        else:
            self._claim_soon = value

    @property
    def hungry(self) -> bool:
        """The application has taken everything read so far (see :class:`ClaimGroup`)."""
        return self._readahead.outstanding == 0

    def wake(self) -> None:
        """Cancel the read the pump waits in, in whichever task runs it (its group wants it to
        claim)."""
        woken = self._woken
        if woken is not None:
            self._woke = True
            woken.cancel()

    async def _pump_group(self, consumer: GroupConsumer, fail: Callable[[Exception], None]) -> None:
        """Claims through the group's :class:`ClaimGroup`, this pump running its checks while it
        is the checker."""
        settings = self._settings
        assert settings.group is not None
        assert self._backend is not None
        summarizing: SummarizingGroupConsumer = consumer  # type: ignore[assignment]
        with joined(
            self,
            self._backend,
            settings.stream_id,
            settings.group,
            grace=settings.ack_grace_period,
            interval=settings.claim_interval,
            clock=self._now,
        ) as (claims, elected):
            self._claims = claims
            error: Exception | None = None
            try:
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(self._check, claims, elected, summarizing, fail)
                    try:
                        await self._read_claimed(summarizing, claims)
                    except Exception as exc:  # re-raised below, not as an exception group
                        error = exc
                    tasks.cancel_scope.cancel()
            finally:
                self._claims = None
            if error is not None:
                raise error

    async def _check(
        self,
        claims: ClaimGroup,
        elected: anyio.Event,
        consumer: SummarizingGroupConsumer,
        fail: Callable[[Exception], None],
    ) -> None:
        """Once this pump is its group's checker: the group's checks, until the pump ends."""
        await elected.wait()
        call = self._calls.call
        try:
            await claims.run_checks(lambda: call(consumer.pending_summary))
        except StreamDestroyedError:
            return  # the reads end the pump
        except Exception as exc:
            fail(exc)

    async def _read_claimed(self, consumer: SummarizingGroupConsumer, claims: ClaimGroup) -> None:
        settings, counters, calls = self._settings, self._counters, self._calls
        readahead, want_acks, leases = self._readahead, self._acker.want, self._leases
        grace, max_block = settings.ack_grace_period, settings.max_block
        if not runs_on_loop_clock(self._now):
            # Blocks are waited out in real seconds: on another clock (a test's fake one) they
            # cannot be computed from it, so look at the leases every claim interval instead.
            max_block = min(max_block, settings.claim_interval)
        if settings.own_pending:
            await self._deliver_own_pending(consumer, None)
        renew_at = math.inf
        while True:
            want_acks()
            now = self._now()
            if leases is not None:
                renew_at = leases.next_due(readahead.outstanding)
                if renew_at <= now:
                    await self._renew()
                    renew_at = leases.next_due(readahead.outstanding)
                    if renew_at <= now:  # due but not renewed (no progress): look again later
                        renew_at = now + settings.claim_interval
            if claims.take_claim(self):
                asked = readahead.read_count()
                claimed: Sequence[Record] = ()
                retries = counters.retries
                try:
                    claimed = await calls.call(consumer.claim_idle, grace, asked)
                finally:
                    claims.claimed(len(claimed), len(claimed) >= asked)
                if counters.retries != retries:
                    await self._recover(consumer, claimed)
                if claimed:
                    await self._deliver(claimed)
                continue
            block = max(0.0, min(max_block, renew_at - now))
            retries = counters.retries
            self._woke = False
            fresh = await self._read(partial(self._read_wakeable, consumer, block), block)
            if fresh is None or self._woke:
                # Woken to claim, or the application's task was cancelled inside the read. A
                # read cancelled after the backend handed it entries leaves them pending for
                # this consumer: fetch them now, as after a lost reply. Only those after the
                # last entry read: a fetch counts as a delivery and restarts the idle time of
                # what it returns, which must not keep read-ahead whose lease ran out from the
                # consumer that claims it.
                await self._recover(consumer, (), after=calls.last_read)
            elif counters.retries != retries:
                await self._recover(consumer, fresh)
                await self._deliver_read(fresh)

    async def _read_wakeable(self, consumer: GroupConsumer, block: float) -> Sequence[Record]:
        """One read of new entries that :meth:`wake` may cancel (in whichever task runs it),
        delivered unless it was woken or needed a retry. Returns what it read."""
        counters, calls = self._counters, self._calls
        retries = counters.retries

        def read_new(count: int, block: float) -> Awaitable[Sequence[Record]]:
            # A retry after a failure does not block: the failed read may have lost a reply
            # whose entries are to be recovered as soon as the backend answers.
            return consumer.read_new(count, block if counters.retries == retries else 0.0)

        count = self._readahead.read_count()
        step = self._step
        if step is not None:
            # Run by the application, inside the step's scope: that one is cancelled to wake
            # it (the step then ends interrupted), so the read needs no scope of its own.
            self._woken, self.reading = step.scope, True
            try:
                records = await calls.call(read_new, count, block)
            finally:
                self._woken, self.reading = None, False
        else:
            records = ()
            with anyio.CancelScope() as woken:
                self._woken, self.reading = woken, True
                try:
                    records = await calls.call(read_new, count, block)
                finally:
                    self._woken, self.reading = None, False
            if woken.cancelled_caught:
                return ()
        self._caught_up = len(records) < count
        if counters.retries == retries:
            await self._deliver_read(records)
        return records
