"""One consumer of a Redis consumer group on one stream (the SPI's ``GroupConsumer``)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, final

import redis.exceptions as rex

from streamsink import StreamsinkError
from streamsink.backend import DeliveryKey, PendingSummary, Record, RecordBatch, StartPosition
from streamsink.backend.redis_ids import parse_entry_id

from . import _wire as wire
from ._claims import IdleClaims
from ._deletion import DeletionWatch
from ._group_base import GroupConsumerBase
from ._group_scripts import READ_OWN as _READ_OWN
from ._handle import Context, Handle
from ._keepalive import DEFAULT_GRACE, Bookkeeping, KeepAlive
from ._keepalive_group import KeepAliveGroups
from ._positions import CHECK_GROUP, ENSURE_GROUP, Script, group_gap
from ._summaries import PendingSummaries

__all__ = ["RedisGroupConsumer"]

_log = logging.getLogger("streamsink_redis")

MAX_PENDING_PAGES = 100
"""Batches one ``read_own_pending`` call may skip when they hold only trimmed entries."""

CHECK_AFTER = 0.05
"""Seconds after which a read is a checked one (the gap-counting script) even if the last one
caught up: long enough idle between two reads for trimming to overtake the group."""

CREATE_BUDGET = 100_000
"""Most entries ``ensure_group`` counts to place a group started after an id in the middle of a
stream; past it the group's position is left unknown (its losses are then reported uncounted)."""

_ENSURE_GROUP = Script(ENSURE_GROUP)
_CHECK_GROUP = Script(CHECK_GROUP)


@final
class RedisGroupConsumer(GroupConsumerBase):
    """A named consumer in a Redis consumer group. Open with
    :meth:`RedisBackend.open_group_consumer`.

    Blocking reads use a connection of their own; everything else uses the backend's pool.
    Delivery counts come from the server's pending entries list: 1 for a ``>`` read, the PEL's
    count for history reads and claims (2 for an entry claimed from a pulse consumer, see
    :mod:`._ownership`).

    With ``pulse_keepalive`` on, the consumer takes part in pulse's keep-alive protocol
    (:mod:`._keepalive`) from :meth:`join` until it is closed, and its claims leave live pulse
    consumers' entries alone (:mod:`._ownership`). Whether or not it is on, a deletion of the
    consumer from its group while it is open is reported once, as
    :class:`~streamsink.ConsumerDeletedError`, by its next call (:mod:`._deletion`).
    """

    def __init__(
        self,
        ctx: Context,
        stream_id: str,
        key: str,
        group: str,
        consumer: str,
        on_close: Callable[[Handle], None],
        *,
        grace: float = DEFAULT_GRACE,
        keepalives: KeepAliveGroups | None = None,
        summaries: PendingSummaries | None = None,
    ) -> None:
        """``grace``: the subscription's ack grace period, the keep-alive's period;
        ``keepalives``: the backend's, for its keep-alive to be refreshed with its group's;
        ``summaries``: the backend's, for its summaries to be sent with others'."""
        super().__init__(ctx, stream_id, key, on_close)
        self._grace = grace
        self._keepalives = keepalives
        self._group = group
        self._consumer = consumer
        # The next read_new goes through the gap-counting script unless the last one caught up
        # (returned less than it asked for) less than CHECK_AFTER ago.
        self._caught_up_at = -math.inf
        # The last id this consumer read with '>': the group has delivered at least that far.
        self._last_new = ""
        # Entries it may hold pending, counted from above (read, claimed, not acked): while 0 a
        # deletion would drop nothing, and its blocking reads go without the XINFO CONSUMERS.
        self._held = 0
        self._watch = watch = DeletionWatch(stream_id, group, consumer)
        self._claims = IdleClaims(
            key=key,
            group=group,
            consumer=consumer,
            watch=watch,
            pipeline=lambda: self._ctx.client.pipeline(transaction=False),
            call=self._call,
            script=self._script_on_pool,
            xpending=summaries.xpending if summaries is not None else None,
        )
        self._pulse = ctx.pulse_keepalive
        self._keepalive: KeepAlive | None = None

    @property
    def consumer(self) -> str:
        """This consumer's name within the group."""
        return self._consumer

    @property
    def group(self) -> str:
        """The consumer group's name."""
        return self._group

    @property
    def keepalive(self) -> KeepAlive | None:
        """Its part in pulse's keep-alive, once joined (None with ``pulse_keepalive`` off)."""
        return self._keepalive

    async def _before_call(self) -> None:
        """Every call, first: refresh its group's keep-alives when due, then raise a deletion
        noticed since the last call (the call then does nothing)."""
        keepalive = self._keepalive
        if keepalive is not None:
            keepalive.called()
            if keepalive.due():
                await keepalive.refresh_if_due()
        error = self._watch.take()
        if error is not None:
            raise error

    async def join(self) -> None:
        """With ``pulse_keepalive`` on: register the consumer and write its keep-alive, before its
        first read creates it in the group; from then on it is refreshed every grace period with
        the group's other consumers on this backend, until it is closed (see
        :mod:`._keepalive_group`). Nothing otherwise. Called
        once, after :meth:`ensure_group`.

        :raises BackendUnavailableError: Redis cannot be reached.
        """
        self._check()
        if not self._pulse or self._keepalive is not None:
            return
        groups = self._keepalives or KeepAliveGroups(self._ctx)
        keepalive = KeepAlive(
            self._ctx,
            Bookkeeping(self._key, self._stream_id, self._group, self._consumer),
            self._watch,
            groups.get(self._group, self._grace),
            holds=lambda: self._held > 0 and self._watch.expected,
        )
        with self._errors("admin"):
            await keepalive.join()
        self._keepalive = keepalive

    def _describe(self) -> str:
        return f"redis consumer {self._consumer!r} of group {self._group!r} on {self._stream_id!r}"

    async def ensure_group(self, start: StartPosition) -> None:
        """Create the group at ``start`` unless it exists (then its stored position wins), with
        ``MKSTREAM`` and its read counter set, so that losses to trimming can be counted from the
        start. Joining an existing group writes nothing (it works when Redis is out of memory)."""
        self._check()
        start_at = wire.start_id(start)
        with self._errors("admin"):
            await self._script_on_pool(
                _ENSURE_GROUP, [self._group, start_at, start.kind, CREATE_BUDGET]
            )
        self._caught_up_at = -math.inf
        self._last_new = ""  # a re-created group may stand before what this consumer read
        self._watch.regrouped()
        if self._keepalive is not None:
            # A group re-created after FLUSHALL: the keep-alive may be gone too; write it before
            # the next read creates the consumer again, or a pulse sink would delete it.
            try:
                await self._keepalive.refresh()
            except StreamsinkError as exc:
                _log.debug("keep-alive of %s not written: %s", self._describe(), exc)

    async def read_new(self, count: int, block: float) -> Sequence[Record]:
        """Entries never delivered to the group, as ``XREADGROUP ... STREAMS key >``.

        A read that may find the group behind trimming (the first one, one after a full batch
        or an idle spell) is preceded, in the same round trip, by the gap-counting script and
        does not block; entries trimmed before the group got to them come back as the batch's
        ``gap``. A read that then finds nothing waits with a plain blocking ``XREADGROUP`` on
        the dedicated connection.
        """
        self._check()
        await self._before_call()
        n = self._count(count)
        block_ms = self._block_ms(block)

        def command(wait_ms: int) -> list[Any]:
            args: list[Any] = ["XREADGROUP", "GROUP", self._group, self._consumer, "COUNT", n]
            if wait_ms > 0:
                args += ["BLOCK", wait_ms]
            return [*args, "STREAMS", self._key, ">"]

        if time.monotonic() - self._caught_up_at > CHECK_AFTER:
            with self._errors("read"):
                raw_gap, reply = await self._checked_read(
                    _CHECK_GROUP, [self._group, self._last_new], command
                )
            records = wire.records_of_read(reply)
            self._note_read(records, n)
            gap = group_gap(self._stream_id, raw_gap)
            if gap is not None:
                return RecordBatch(records, gap)
            if records or block_ms == 0:
                return records

        keepalive = self._keepalive
        if keepalive is not None:  # one read of the group wakes for its refresh
            block_ms = keepalive.cut(block_ms)
        with self._errors("read"), self._reading(keepalive):
            if self._held <= 0:
                reply = await self._reads.read(command, block_ms)
            else:  # while it holds entries, look for a deletion every claim interval, as before
                block_ms = min(block_ms, self._ctx.options.claim_interval_ms)
                # The listing goes in the same write as the read (no round trip): a consumer
                # deleted since the last call is missing from it (reads and claims re-create it).
                listing, reply = await self._reads.read_after(
                    self._listing(), command, block_ms, first_may_fail=True
                )
                self._check_listing(listing, "XINFO CONSUMERS no longer listed it before a read")
        records = wire.records_of_read(reply)
        self._note_read(records, n)
        return records

    def _note_read(self, records: Sequence[Record], asked: int) -> None:
        if records:
            # A read of new entries creates the consumer only when it returns some (Redis 7.0:
            # an empty XREADGROUP ... > leaves it out of XINFO CONSUMERS, blocking or not).
            self._watch.created()
            self._last_new = records[-1].entry_id
            self._held += len(records)
        self._caught_up_at = time.monotonic() if len(records) < asked else -math.inf

    async def read_own_pending(self, after: str | None, count: int) -> Sequence[Record]:
        """History read (``XREADGROUP ... STREAMS key <after>``) and the matching XPENDING range,
        in one atomic script; trimmed entries are acknowledged (dropped) and skipped."""
        self._check()
        await self._before_call()
        n = self._count(count)
        if after is None:
            start = "0-0"
            pending_from = "-"
        else:
            ms, seq = parse_entry_id(after)
            start = f"{ms}-{seq}"
            pending_from = f"({start}"
        for _ in range(MAX_PENDING_PAGES):
            with self._errors("read"):
                raw_entries, pending_reply = await self._script_on_pool(
                    _READ_OWN, [self._group, self._consumer, n, start, pending_from]
                )
                entries = wire.entries_of_read([(b"", raw_entries)])  # as one stream's reply
                trimmed = [entry_id for entry_id, fields in entries if fields is None]
                if trimmed:
                    await self._call("XACK", self._key, self._group, *trimmed)
            self._watch.created()  # XREADGROUP creates the consumer
            live = wire.records(entries, wire.delivery_counts(pending_reply), default=2)
            if live and self._ctx.poll:
                # fakeredis counts a history read as a delivery but, unlike Redis, does not
                # restart its idle time; do it here so fakeredis:// redelivers as Redis does.
                await self._settle_own([DeliveryKey.of(record) for record in live], 0)
            self._held += len(live)
            if live or not trimmed or len(entries) < n:
                return live
            start = entries[-1][0]
            pending_from = f"({start}"
        return []

    async def claim_idle(self, min_idle: float, count: int) -> Sequence[Record]:
        """Entries idle for ``min_idle`` seconds, claimed by one or a few pages of a scan
        (:mod:`._claims`; with ``pulse_keepalive`` on, live pulse consumers' entries are left
        alone, :mod:`._ownership`). Trimmed entries are dropped."""
        self._check()
        await self._before_call()
        n = self._count(count)
        idle_ms = 0 if not min_idle > 0 else math.ceil(min(min_idle, 2**40) * 1000)
        if self._watch.expected:
            # Before claiming: XAUTOCLAIM and XCLAIM re-create a deleted consumer.
            listing: Any
            with self._errors("read"):
                try:
                    listing = await self._call(*self._listing())
                except rex.ResponseError as exc:
                    listing = exc
            self._check_listing(listing, "XINFO CONSUMERS no longer listed it before a claim")
        with self._errors("read"):
            if self._keepalive is not None:
                claimed = await self._claims.sharing(idle_ms, n, self._keepalive)
            else:
                claimed = await self._claims.plain(idle_ms, n)
        self._held += len(claimed)
        return claimed

    async def pending_summary(self) -> PendingSummary:
        """How many entries the group holds pending and the longest idle time among them
        (``XPENDING``: one command when nothing is pending; see :mod:`._claims`)."""
        self._check()
        await self._before_call()
        with self._errors("read"):
            return await self._claims.summary()

    async def _cleanup(self) -> None:
        """Delete this consumer from the group when it owns no pending entries (deleting it
        otherwise would drop them); with a keep-alive, remove its keep-alive and consumers-map
        entries with it, or write its keep-alive once more when it stays (:mod:`._keepalive`)."""
        if self._keepalive is not None:
            await self._keepalive.leave()
            return
        pending = await self._call("XPENDING", self._key, self._group, "-", "+", 1, self._consumer)
        if not pending:
            await self._call("XGROUP", "DELCONSUMER", self._key, self._group, self._consumer)

    async def _forget(self) -> None:
        """The stream was destroyed: remove the keep-alive and consumers-map entries."""
        if self._keepalive is not None:
            await self._keepalive.leave()
