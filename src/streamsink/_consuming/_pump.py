"""``Pump``: the task that reads a subscription's stream into its read-ahead.

In a group it first delivers this consumer's own pending entries (a consumer restarting under
its old name gets back what it held, docs/contract.md rule 10; on backends that declare
``own_pending``), then reads new entries, renewing the leases of its read-ahead as it goes (on
backends that declare ``redelivery``), and takes over idle entries of the group (``claim_idle``,
on backends that declare ``redelivery`` and ``claims``):

- on a backend that declares ``pending_summary``, through the group's
  :class:`~._claim_group.ClaimGroup` (:class:`~._claim_group_pump.ClaimGroupPump`);
- elsewhere (this class), every ``claim_interval``, reads blocking at most until the next scan.

A backend that redelivers by itself hands redeliveries out through its reads, so the pump just
reads there. A fan-out reader just reads. Everything read goes through the
:class:`~._intake.Intake` and is handed to the :class:`~._readahead.ReadAhead` a batch at a time.
A blocking read, once caught up with the stream, is offered to the application task waiting
for events (:meth:`Pump._read`, :mod:`._baton`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

import anyio

from ..backend import (
    Backend,
    GroupConsumer,
    Record,
    RecordBatch,
    StreamDestroyedError,
    StreamReader,
)
from ..lowlevel import checkpoint
from ._acking import Acker
from ._baton import ReadStep
from ._calls import BackendCalls
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
        "_caught_up",
        "_claim_soon",
        "_counters",
        "_gaps",
        "_held",
        "_intake",
        "_leases",
        "_now",
        "_readahead",
        "_scope",
        "_settings",
        "_step",
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
        self._caught_up = True  # the last read brought less than it asked for
        #: the read offered to the application, while it is (its scope wraps the read there)
        self._step: ReadStep[Sequence[Record]] | None = None

    @property
    def claim_soon(self) -> bool:
        """Scan for idle entries at once (set after a nack)."""
        return self._claim_soon

    @claim_soon.setter
    def claim_soon(self, value: bool) -> None:
        self._claim_soon = value

    async def run(
        self, handle: GroupConsumer | StreamReader, fail: Callable[[Exception], None]
    ) -> None:
        """Read until stopped; then (whatever the end) close the read-ahead."""
        try:
            with self._scope:
                consumer = self._calls.consumer
                if consumer is not None:
                    await self._pump_group(consumer, fail)
                else:
                    await self._pump_reader(handle)  # type: ignore[arg-type]
        except StreamDestroyedError:
            log.debug("stream %s destroyed: subscription ends", self._settings.stream_id)
        except Exception as exc:  # never let a failure tear down the application's own block
            fail(exc)
        finally:
            self._readahead.close()

    async def _pump_group(self, consumer: GroupConsumer, fail: Callable[[Exception], None]) -> None:
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
            fresh = await self._read(partial(self._read_new, consumer, block), block)
            if fresh is None:  # the application's task was cancelled inside the read
                await self._recover(consumer, (), after=calls.last_read)
            elif counters.retries != retries:
                # A read failed before the retry that succeeded: its reply may have been lost
                # after the backend had made its entries pending for this consumer.
                await self._recover(consumer, fresh)
                await self._deliver_read(fresh)

    async def _read_new(self, consumer: GroupConsumer, block: float) -> Sequence[Record]:
        """One read of new entries, delivered unless it needed a retry (then the caller
        recovers first). Returns what it read."""
        retries = self._counters.retries
        count = self._readahead.read_count()
        records = await self._calls.call(consumer.read_new, count, block)
        self._caught_up = len(records) < count
        if self._counters.retries == retries:
            await self._deliver_read(records)
        return records

    async def _deliver_read(self, records: Sequence[Record]) -> None:
        """Deliver what a read brought (an empty batch may carry a gap)."""
        if records:
            self._calls.last_read = records[-1].entry_id
            await self._deliver(records)
        elif type(records) is RecordBatch and records.gap is not None:
            self._gaps.note(records.gap)

    async def _read(
        self,
        body: Callable[[], Awaitable[Sequence[Record]]],
        block: float,
        again: Callable[[], bool] | None = None,
    ) -> Sequence[Record] | None:
        """Run ``body`` (a read waiting up to ``block`` seconds, and the delivery of what it
        brings) in the application task waiting for events when there is one and the last read
        caught up with the stream (:mod:`._baton`), here otherwise. Returns what it read, None
        when the application's task was cancelled inside it; raises what ``body`` raised, in
        this task, wherever it ran.

        A body delivers at most one batch: run by a waiting application with nothing
        buffered, that batch always has room (more would wait for room only that task makes).
        """
        # Behind, the next read brings a batch at once, and the pump reading it while the
        # application handles this one keeps both busy.
        step = self._readahead.offer(body, block, again) if self._caught_up else None
        if step is None:
            return await body()
        self._step = step
        try:
            await step.finished()
        except BaseException:  # this pump is ending: so does the read, wherever it runs
            self._readahead.withdraw(step)
            step.cancel()
            raise
        finally:
            self._step = None
        if not step.ran:
            return await body()  # the task it was offered to left before taking it
        if step.error is not None:
            raise step.error
        return None if step.interrupted else step.result

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
        max_block = self._settings.max_block
        body = partial(self._read_from, reader, max_block)
        # A fan-out reader has nothing else to do between two reads: while they catch up, the
        # application task waiting for events runs one after the other (ReadStep's `again`).
        while True:
            await (self._read(body, max_block, self._still_caught_up) if max_block > 0 else body())

    def _still_caught_up(self) -> bool:
        return self._caught_up

    async def _read_from(self, reader: StreamReader, block: float) -> Sequence[Record]:
        """One read of a fan-out reader, and the delivery of what it brings (a cancelled read
        moves no cursor: nothing to recover)."""
        count = self._readahead.read_count()
        records = await self._calls.call(reader.read, count, block)
        self._caught_up = len(records) < count
        if records:
            await self._deliver(records)
        elif type(records) is RecordBatch and records.gap is not None:
            self._gaps.note(records.gap)
        return records

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
            batch[0] = gaps.attach(batch[0])
        leases = self._leases
        lease = Lease(ids, read_at, records) if leases is not None else None

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
        await self._calls.call(consumer.touch, renewal.delivery_keys())
        leases.renewed(renewal)
