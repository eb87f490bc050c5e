"""``Pump``: the task that reads a subscription's stream into its read-ahead.

In a group it first delivers this consumer's own pending entries (a consumer restarting under
its old name gets back what it held, docs/contract.md rule 10; on backends that declare
``own_pending``), then reads new entries, renewing the leases of its read-ahead as it goes (on
backends that declare ``redelivery``), and takes over idle entries of the group (``claim_idle``,
on backends that declare ``redelivery`` and ``claims``):

- on a backend that declares ``pending_summary``, through the group's
  :class:`~._claim_group.ClaimGroup`, shared with the other subscriptions of the group in this
  process: a claim only when something pending can be idle past the grace period, by a member
  waiting in a read (its read is cancelled for it), and reads that block up to ``max_block``,
  waking early only to renew leases that are due;
- elsewhere, every ``claim_interval``, reads blocking at most until the next scan.

A backend that redelivers by itself hands redeliveries out through its reads, so the pump just
reads there. A fan-out reader just reads. Everything read goes through the
:class:`~._intake.Intake` and is handed to the :class:`~._readahead.ReadAhead` a batch at a time.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Sequence

import anyio

from ..backend import (
    Backend,
    GroupConsumer,
    Record,
    RecordBatch,
    StreamDestroyedError,
    StreamReader,
    SummarizingGroupConsumer,
)
from ..lowlevel import checkpoint
from ._acking import Acker
from ._calls import BackendCalls
from ._claim_group import ClaimGroup, joined, runs_on_loop_clock
from ._gaps import Gaps
from ._intake import Intake
from ._leases import Lease, ReadAheadLeases
from ._readahead import ReadAhead
from ._settings import Settings
from ._statistics import Counters

__all__ = ["Pump"]

log = logging.getLogger("streamsink")


class Pump:
    """Reads one stream for one subscription until stopped, the stream destroyed, or a failure
    (which it hands to ``fail`` rather than raise: the application's own block must not be torn
    down by it)."""

    __slots__ = (
        "_acker",
        "_backend",
        "_calls",
        "_claim_soon",
        "_claims",
        "_counters",
        "_gaps",
        "_held",
        "_intake",
        "_leases",
        "_now",
        "_readahead",
        "_scope",
        "_settings",
        "_woken",
        "reading",
    )

    def __init__(
        self,
        settings: Settings,
        *,
        scope: anyio.CancelScope,
        readahead: ReadAhead,
        leases: ReadAheadLeases | None,
        calls: BackendCalls,
        intake: Intake,
        acker: Acker,
        gaps: Gaps,
        counters: Counters,
        clock: Callable[[], float],
        held: Callable[[], set[str]],
        backend: Backend | None = None,
    ) -> None:
        """``scope`` is cancelled to stop the pump; ``held()`` gives the ids the subscription
        has read and not settled (skipped when own pending entries are fetched again);
        ``backend`` (needed where ``settings.summaries``) tells which groups are the same."""
        self._settings = settings
        self._backend = backend
        self._scope = scope
        self._readahead = readahead
        self._leases = leases
        self._calls = calls
        self._intake = intake
        self._acker = acker
        self._gaps = gaps
        self._counters = counters
        self._now = clock
        self._held = held
        self._claim_soon = False
        #: the group's shared claims while the pump runs (``settings.summaries``)
        self._claims: ClaimGroup | None = None
        #: True while waiting in a read that :meth:`wake` cancels
        self.reading = False
        self._woken: anyio.CancelScope | None = None

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
        """Cancel the read the pump waits in (its group wants it to claim)."""
        woken = self._woken
        if woken is not None:
            woken.cancel()

    async def run(
        self, handle: GroupConsumer | StreamReader, fail: Callable[[Exception], None]
    ) -> None:
        """Read until stopped; then (whatever the end) close the read-ahead."""
        try:
            with self._scope:
                consumer = self._calls.consumer
                if consumer is not None and self._settings.summaries:
                    await self._pump_shared(consumer, fail)  # type: ignore[arg-type]
                elif consumer is not None:
                    await self._pump_group(consumer)
                else:
                    await self._pump_reader(handle)  # type: ignore[arg-type]
        except StreamDestroyedError:
            log.debug("stream %s destroyed: subscription ends", self._settings.stream_id)
        except Exception as exc:  # never let a failure tear down the application's own block
            fail(exc)
        finally:
            self._readahead.close()

    async def _pump_group(self, consumer: GroupConsumer) -> None:
        settings, counters, calls = self._settings, self._counters, self._calls
        readahead, want_acks = self._readahead, self._acker.want
        claims, turns = settings.claims, settings.renews
        # A consumer restarting under its old name first gets back what it held when it stopped.
        if settings.own_pending:
            await self._deliver_own_pending(consumer, None)
        grace = settings.ack_grace_period
        # Every claim interval a turn renews the read-ahead's leases, then (where the core
        # drives redelivery) claims. Without redelivery no turn is ever due, and reads block for
        # max_block.
        next_claim = self._now() if turns else math.inf
        while True:
            want_acks()
            now = self._now()
            if turns and (self._claim_soon or now >= next_claim):
                self._claim_soon = False
                next_claim = now + settings.claim_interval
                await self._renew()
                if claims:
                    retries = counters.retries
                    claimed = await calls.call(consumer.claim_idle, grace, readahead.read_count())
                    if counters.retries != retries:
                        await self._recover(consumer, claimed)
                    if claimed:
                        self._claim_soon = len(claimed) >= settings.fetch_count  # more may wait
                        await self._deliver(claimed)
                        continue
            block = max(0.0, min(next_claim - now, settings.max_block))
            retries = counters.retries
            records = await calls.call(consumer.read_new, readahead.read_count(), block)
            if counters.retries != retries:
                await self._recover(consumer, records)
            if records:
                calls.last_read = records[-1].entry_id
                await self._deliver(records)
            elif type(records) is RecordBatch and records.gap is not None:
                self._gaps.note(records.gap)

    async def _pump_shared(
        self, consumer: SummarizingGroupConsumer, fail: Callable[[Exception], None]
    ) -> None:
        """The group loop on a backend with ``pending_summary``: claims through the group's
        :class:`ClaimGroup`, this pump running its checks while it is the checker."""
        settings = self._settings
        assert settings.group is not None
        assert self._backend is not None
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
                    tasks.start_soon(self._check, claims, elected, consumer, fail)
                    try:
                        await self._read_shared(consumer, claims)
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

    async def _read_shared(self, consumer: SummarizingGroupConsumer, claims: ClaimGroup) -> None:
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

            def read_new(
                count: int, block: float, before: int = retries
            ) -> Awaitable[Sequence[Record]]:
                # A retry after a failure does not block: the failed read may have lost a reply
                # whose entries are to be recovered as soon as the backend answers.
                return consumer.read_new(count, block if counters.retries == before else 0.0)

            with anyio.CancelScope() as woken:
                self._woken, self.reading = woken, True
                try:
                    records = await calls.call(read_new, readahead.read_count(), block)
                finally:
                    self._woken, self.reading = None, False
            if woken.cancelled_caught:
                # Woken to claim. A read cancelled after the backend handed it entries leaves
                # them pending for this consumer: fetch them now, as after a lost reply. Only
                # those after the last entry read: a fetch counts as a delivery and restarts
                # the idle time of what it returns, which must not keep read-ahead whose lease
                # ran out from the consumer that claims it.
                await self._recover(consumer, (), after=calls.last_read)
                continue
            if counters.retries != retries:
                await self._recover(consumer, records)
            if records:
                calls.last_read = records[-1].entry_id
                await self._deliver(records)
            elif type(records) is RecordBatch and records.gap is not None:
                self._gaps.note(records.gap)

    async def _recover(
        self, consumer: GroupConsumer, fresh: Sequence[Record], *, after: str | None = None
    ) -> None:
        """A read or claim failed before the retry that succeeded: its reply may have been lost
        after the backend had already made its entries pending for this consumer. Fetch this
        consumer's pending entries again now, rather than wait a grace period for the group to
        reclaim them, skipping those this subscription still holds (and, with ``after``, all
        up to that id). A backend without ``own_pending`` redelivers them after the grace
        period instead."""
        if not self._settings.own_pending:
            return
        held = {record.entry_id for record in fresh}
        held.update(self._held())
        await self._deliver_own_pending(consumer, held, after)

    async def _deliver_own_pending(
        self, consumer: GroupConsumer, held: set[str] | None, after: str | None = None
    ) -> None:
        """Deliver this consumer's pending entries after ``after``: on start (``held`` None),
        or after a lost reply, except ``held`` (counted as ``recovered``)."""
        read_count = self._readahead.read_count
        while records := await self._calls.call(consumer.read_own_pending, after, read_count()):
            after = records[-1].entry_id
            if held is not None:
                records = [record for record in records if record.entry_id not in held]
                self._counters.recovered += len(records)
            if records:
                await self._deliver(records)

    async def _pump_reader(self, reader: StreamReader) -> None:
        readahead, max_block = self._readahead, self._settings.max_block
        while True:
            records = await self._calls.call(reader.read, readahead.read_count(), max_block)
            if records:
                await self._deliver(records)
            elif type(records) is RecordBatch and records.gap is not None:
                self._gaps.note(records.gap)

    async def _deliver(self, records: Sequence[Record]) -> None:
        """Take ``records`` in and hand what is left to the application, once there is room."""
        gaps = self._gaps
        if type(records) is RecordBatch and records.gap is not None:
            gaps.note(records.gap)
        read = len(records)
        self._counters.received += read
        read_at = self._now()
        batch, ids, nbytes = await self._intake.take_in(records)
        readahead = self._readahead
        if read:
            # Per entry read, filtered-out ones included: they hold no read-ahead, and a stream
            # of them must still be read in full batches.
            readahead.entry_bytes = nbytes // read
        if not batch:
            return
        if gaps.pending is not None:
            gaps.attach(batch[0])
        leases = self._leases
        lease = Lease(ids, read_at) if leases is not None else None

        async def keep_up() -> None:
            # The application is behind. While waiting on it, keep acking what it finishes and
            # renewing the lease of what waits, so neither is redelivered meanwhile.
            self._acker.want()
            await self._renew(lease)

        await readahead.wait_for_room(len(batch), nbytes, keep_up)
        if lease is not None and leases is not None:
            leases.handed(lease)
        if readahead.hand_over(batch, lease, nbytes):
            # The application was waiting: let it take the batch before this task goes on to
            # its next read, whose request would otherwise delay the event by a round trip's
            # worth of work.
            await checkpoint()

    async def _renew(self, held: Lease | None = None) -> None:
        """Renew the lease of events read but not yet taken by the application (and of ``held``,
        a batch the pump still holds), so a slow consumer's read-ahead is not redelivered while
        it waits. Only while the application makes progress: a consumer stuck on one event for a
        whole grace period stops renewing, and the group reclaims what it holds. A lease that
        already ran out is never renewed: its entries may be another consumer's now."""
        leases, consumer = self._leases, self._calls.consumer
        if leases is None or consumer is None or not self._settings.renews:
            return
        renewal = leases.due(self._readahead.outstanding, held)
        if renewal is None:
            return
        await self._calls.call(consumer.touch, renewal.ids)
        leases.renewed(renewal)
