"""``Subscription``: one stream read through a group or as a fan-out reader (DESIGN §4, 6-15).

A pump task reads from the backend into a bounded buffer; the application takes events from the
buffer. In auto mode an event is acknowledged once the application asks for the next one or
leaves the loop normally, never when it is merely buffered, so a crash loses nothing: whatever
was read but not finished stays pending in the group and is redelivered.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

import anyio
import attrs
from anyio.lowlevel import checkpoint_if_cancelled

from ._backoff import Backoff
from ._coalesce import Coalescer
from ._deadletter import DEAD_LETTER_EVENT, DeadLetter, decode_dead_letter, encode_dead_letter
from ._delivery import Delivery
from ._envelope import decode_entry, decode_envelope
from ._events import StreamEvent, set_event_gap, set_event_topic
from ._exceptions import (
    AckError,
    BackendUnavailableError,
    DecodeError,
    EntriesSkippedError,
    SinkClosedError,
    StreamsinkError,
    SubscriptionError,
)
from ._handoff import Handoff
from ._leases import Lease, ReadAheadLeases
from ._options import SubscriberOptions, default_dead_letter_stream
from ._streams import dead_letter_stream_id
from ._topics import TopicFilter, topic_filter
from .backend import (
    Entry,
    Gap,
    GroupConsumer,
    GroupLostError,
    Record,
    RecordBatch,
    StartPosition,
    StreamDestroyedError,
    StreamReader,
)
from .lowlevel import checkpoint, clock

if TYPE_CHECKING:
    from ._subscriber import StreamSubscriber

__all__ = ["Subscription", "SubscriptionStatistics"]

log = logging.getLogger("streamsink")
T = TypeVar("T")
ItemT = TypeVar("ItemT")

_CLOSE_TIMEOUT = (
    2.0  # bound on the final ack flush and consumer close, which may find the backend gone
)


@attrs.frozen
class SubscriptionStatistics:
    """Counters of one subscription (only ever grow)."""

    #: entries read from the backend (first deliveries and redeliveries)
    received: int
    #: entries read with a delivery count above 1
    redelivered: int
    #: entries acknowledged
    acknowledged: int
    #: entries that could not be decoded
    decode_errors: int
    #: entries written to the dead-letter stream (or dropped when there is none)
    dead_lettered: int
    #: backend calls retried after the backend was unreachable
    retries: int
    #: consumer groups re-created after they vanished
    groups_recreated: int
    #: entries trimmed from the stream before this subscription (or its group) read them, as far
    #: as the backend could count them (see ``gaps``)
    skipped: int = 0
    #: losses found (each reported to ``on_error`` as :class:`EntriesSkippedError`); one whose
    #: size the backend could not tell adds to this but not to ``skipped``
    gaps: int = 0
    #: read-ahead entries not handed to the application because their lease ran out first (the
    #: process was stopped, or the application took nothing for a grace period): the group may
    #: have given them to another consumer, so they are left to it
    expired: int = 0
    #: own pending entries fetched again after a read whose reply was lost
    recovered: int = 0
    #: dead letters that could not be written; their entries stay pending and are tried again
    dead_letter_failures: int = 0
    #: entries read but not handed to the application because the topic filter
    #: (``SubscriberOptions.topic``/``topic_pattern``) dropped them; a group acknowledges them
    #: (they count in ``acknowledged`` too), a fan-out reader just skips them
    filtered: int = 0


@attrs.define
class _Counters:
    received: int = 0
    redelivered: int = 0
    acknowledged: int = 0
    decode_errors: int = 0
    dead_lettered: int = 0
    retries: int = 0
    groups_recreated: int = 0
    skipped: int = 0
    gaps: int = 0
    expired: int = 0
    recovered: int = 0
    dead_letter_failures: int = 0
    filtered: int = 0

    def snapshot(self) -> SubscriptionStatistics:
        return SubscriptionStatistics(**attrs.asdict(self))


class Subscription(Generic[ItemT]):
    """Events (auto mode) or :class:`Delivery` objects (manual mode) from one stream.

    Use as ``async with subscriber.subscribe(stream_id) as events: async for event in events``.
    Iteration ends without error when the subscription is closed or the stream destroyed, and
    raises :class:`SubscriptionError` when it ended by a failure (the backend unreachable past
    ``reconnect_timeout``, acks that keep failing). Leaving the ``async with`` closes it promptly.

    Whatever the decoder raises for an entry makes that entry poison (reported, dead-lettered in
    a group), never the end of the subscription.
    """

    def __init__(
        self,
        subscriber: StreamSubscriber,
        stream_id: str,
        start: StartPosition,
        *,
        manual: bool,
        letters: bool = False,
    ) -> None:
        options = subscriber.options
        self._subscriber = subscriber
        self._backend = subscriber.backend
        self._options = options
        self._stream_id = stream_id
        self._start = start
        self._manual = manual
        self._group = options.group
        self._consumer_name = subscriber._consumer_name()
        self._count = options.fetch_count or options.buffer
        self._claim_interval = subscriber._claim_interval
        self._max_block = options.max_block or (self._claim_interval if self._group else 5.0)
        # Dead-letter subscriptions yield DeadLetter objects; the default decoder is inlined.
        self._letters = letters
        self._decoder: Callable[[bytes], Any] = decode_dead_letter if letters else options.decoder
        self._fast_decode = not letters and options.decoder is decode_envelope
        self._dead_letter_stream = _dead_letter_target(options, stream_id, letters=letters)
        # None (every entry handed out) unless a topic filter is set; dead letters carry no
        # topic, so a dead-letter subscription is never filtered.
        self._accepts: TopicFilter | None = (
            None if letters else topic_filter(options.topic, options.topic_pattern)
        )
        self._counters = _Counters()
        self._backoff = Backoff(budget=options.reconnect_timeout)
        self._consumer: GroupConsumer | None = None
        self._reader: StreamReader | None = None
        # Batches from the pump to the application: (items, their lease or None, payload bytes).
        # Unbounded as a queue: `_outstanding` and `_bytes_out` bound what it holds.
        self._handoff: Handoff[tuple[list[Any], Lease | None, int]] = Handoff()
        self._stack: AsyncExitStack | None = None
        self._pump_scope = anyio.CancelScope()
        self._acker_scope = anyio.CancelScope()
        self._acks_wanted: anyio.Event  # auto mode: set when `_done` has ids to acknowledge
        self._state = "new"  # new -> open -> closed
        self._terminal: SubscriptionError | None = None
        self._current: str | None = None  # auto mode: id of the event the application holds
        # Ids finished by the application (auto mode) or dropped by the topic filter (group
        # mode), not yet acked.
        self._done: list[str] = []
        self._acking: list[str] = []  # ids of the ack call in flight
        self._unsettled: set[str] = set()  # manual group mode: delivered, not settled yet
        self._items: deque[Any] = deque()  # the batch being handed out, what is left of it
        self._items_lease: Lease | None = None  # ... and its lease (group mode)
        self._items_bytes = 0  # ... and its payload bytes
        self._outstanding = 0  # events handed over by the pump, not yet taken by the application
        self._bytes_out = 0  # payload bytes of the batches handed over and not wholly taken
        self._bytes_budget = options.buffer_bytes
        self._entry_bytes = -1  # mean payload size of the last batch read (-1: none read yet)
        self._wake_at = -1  # the pump waits for `_outstanding` to fall to this (-1: not waiting)
        self._wake_bytes = -1  # ... or for `_bytes_out` to fall to this
        self._room: anyio.Event  # set when it has fallen that far; made on entry
        self._leases: ReadAheadLeases | None = None  # group mode; made on entry
        self._lease_limit = math.inf  # age at which read-ahead may no longer be handed out
        self._pending_gap: Gap | None = None  # found, not yet attached to a delivered item
        self._last_read: str | None = None
        self._claim_soon = False
        self._stopping = False
        self._acks: Coalescer[str, None] = Coalescer(self._ack_ids)

    # -- public surface -------------------------------------------------------------------------

    @property
    def stream_id(self) -> str:
        return self._stream_id

    @property
    def group(self) -> str | None:
        return self._group

    @property
    def consumer(self) -> str | None:
        """This consumer's name in the group (None for fan-out readers)."""
        return self._consumer_name if self._group else None

    def statistics(self) -> SubscriptionStatistics:
        return self._counters.snapshot()

    async def __aenter__(self) -> Self:
        if self._state != "new":
            raise SubscriptionError("a subscription can be entered only once")
        self._state = "open"
        try:
            if self._group is not None:
                self._consumer = await self._call(
                    self._backend.open_group_consumer,
                    self._stream_id,
                    self._group,
                    self._consumer_name,
                    self._start,
                )
            else:
                self._reader = await self._call(
                    self._backend.open_reader, self._stream_id, self._start
                )
        except BaseException:
            self._state = "closed"
            raise
        self._refill = anyio.Lock()
        self._room = anyio.Event()
        self._acks_wanted = anyio.Event()
        self._now: Callable[[], float] = clock()
        if self._group is not None:
            self._leases = ReadAheadLeases(self._options.ack_grace_period, self._now())
            self._lease_limit = self._leases.limit
        stack = AsyncExitStack()
        task_group = await stack.enter_async_context(anyio.create_task_group())
        task_group.start_soon(self._run_pump)
        # Auto mode acknowledges what the application finished; a filtered group also what its
        # filter drops, in manual mode too.
        if not self._manual or (self._accepts is not None and self._group is not None):
            task_group.start_soon(self._run_acker)
        self._stack = stack
        self._subscriber._track_open(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._state != "open":
            return None
        self._state = "closed"
        # Leaving normally finishes the current event; leaving by an exception leaves it pending.
        if exc is None and self._current is not None:
            self._done.append(self._current)
        self._current = None
        self._pump_scope.cancel()
        self._acker_scope.cancel()
        try:
            # The pump never raises (it records terminal errors), so the task group is exited
            # clean: the application's own exception then propagates as is, not in a group.
            if self._stack is not None:
                await self._stack.aclose()
            return None
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT):
                await self._flush_acks(final=True)
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT):
                await self._close_handles()
            self._subscriber._track_closed(self)

    async def aclose(self) -> None:
        """Stop the subscription from any task of the same event loop: reading stops at once and
        iteration ends at the next step. Events read but not yet handed out stay pending in the
        group (redelivered later); leaving the ``async with`` block releases the rest.
        """
        self._stopping = True
        self._pump_scope.cancel()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ItemT:
        if self._state != "open":
            raise SubscriptionError(
                "iterate a subscription inside `async with subscriber.subscribe(...) as sub:`"
            )
        current = self._current
        if current is not None:
            self._done.append(current)
            self._current = None
        if self._stopping:
            self._end()
        items = self._items
        while True:
            if not items:
                await self._refill_items()
            lease = self._items_lease
            # Group mode: read-ahead whose lease ran out may be another consumer's by now (this
            # process was stopped, or the application took nothing for a grace period).
            if lease is None or self._now() - lease.renewed_at < self._lease_limit:
                break
            self._expire_items()
        item = items.popleft()
        outstanding = self._outstanding = self._outstanding - 1
        if outstanding <= self._wake_at:
            self._wake_at = -1
            self._room.set()
        if self._manual:
            return item  # type: ignore[no-any-return]
        self._current, event = item
        return event  # type: ignore[no-any-return]

    async def _refill_items(self) -> None:
        """Wait for the pump's next batch (``_items`` is empty)."""
        items = self._items
        # Taking from the buffer does not wait, so without this a task whose scope was cancelled
        # would go on being handed buffered events: checked once per batch, as trio's channels
        # check on every receive.
        await checkpoint_if_cancelled()
        while not items:
            # Nothing left to take: acknowledge what is finished now, not at the pump's next read.
            self._want_acks()
            # Several tasks may iterate one subscription (a worker pool in manual mode): one
            # refills at a time and the others take from what it got, so read-ahead stays
            # bounded and no batch is left behind.
            async with self._refill:
                if not items:
                    self._release_bytes()
                    try:
                        batch, self._items_lease, self._items_bytes = await self._handoff.get()
                    except anyio.EndOfStream:
                        self._items_lease = None
                        self._end()
                    items.extend(batch)

    def _release_bytes(self) -> None:
        """The batch in ``_items`` was wholly taken: its bytes no longer count as read-ahead."""
        if self._items_bytes:
            self._bytes_out -= self._items_bytes
            self._items_bytes = 0
            if self._wake_bytes >= 0 and self._bytes_out <= self._wake_bytes:
                self._wake_bytes = -1
                self._room.set()

    def _expire_items(self) -> None:
        """Drop what is left of the batch in ``_items``: its lease ran out, so the group may have
        given it to another consumer; handing it out here would handle it twice. The entries stay
        pending (this consumer's, or whoever claimed them) and nothing of them is acknowledged."""
        items = self._items
        count = len(items)
        items.clear()
        self._items_lease = None
        self._counters.expired += count
        outstanding = self._outstanding = self._outstanding - count
        if outstanding <= self._wake_at:
            self._wake_at = -1
            self._room.set()
        self._report(
            StreamsinkError(
                f"{count} read-ahead entries of {self._stream_id!r} were not handed out: their "
                f"lease ran out (ack_grace_period={self._options.ack_grace_period:g} s) before "
                "the application took them, so they are left for redelivery"
            )
        )

    def _end(self) -> None:
        if self._terminal is not None:
            raise self._terminal
        raise StopAsyncIteration

    # -- the pump -------------------------------------------------------------------------------

    async def _run_pump(self) -> None:
        try:
            with self._pump_scope:
                if self._consumer is not None:
                    await self._pump_group(self._consumer)
                elif self._reader is not None:
                    await self._pump_reader(self._reader)
        except StreamDestroyedError:
            log.debug("stream %s destroyed: subscription ends", self._stream_id)
        except Exception as exc:  # never let a failure tear down the application's own block
            self._fail(exc)
        finally:
            self._handoff.close()

    async def _run_acker(self) -> None:
        """Auto mode: acknowledge what the application finished while the pump reads on, so
        an ack's round trip never holds up the next read. Acks failing past
        ``reconnect_timeout`` end the subscription, as the pump's failures do."""
        try:
            with self._acker_scope:
                while True:
                    await self._acks_wanted.wait()
                    self._acks_wanted = anyio.Event()
                    await self._flush_acks()
        except StreamDestroyedError:
            pass  # the pump sees it too, and ends the subscription cleanly
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        """Record a terminal failure (iteration raises it) and stop reading."""
        if self._terminal is None:
            if isinstance(exc, SubscriptionError):
                self._terminal = exc
            else:
                error = SubscriptionError(f"subscription to {self._stream_id!r} failed: {exc!r}")
                error.__cause__ = exc
                self._terminal = error
        self._pump_scope.cancel()

    def _want_acks(self) -> None:
        """Have the acker acknowledge the finished events, if there are any."""
        if self._done:
            self._acks_wanted.set()

    def _read_count(self) -> int:
        """Entries to ask for: ``fetch_count``, fewer when entries are large, so that one read
        does not bring much more than the byte budget has room for. Before the first entry is
        seen their size is unknown: the first read asks for one."""
        size = self._entry_bytes
        if size < 0:
            return 1
        count = self._count
        if size * count > self._bytes_budget:
            room = max(self._bytes_budget - self._bytes_out, size)
            count = max(1, min(count, room // size))
        return count

    async def _pump_group(self, consumer: GroupConsumer) -> None:
        counters = self._counters
        # A consumer restarting under its old name first gets back what it held when it stopped.
        await self._deliver_own_pending(consumer, None)
        grace = self._options.ack_grace_period
        next_claim = self._now()
        while True:
            self._want_acks()
            now = self._now()
            if self._claim_soon or now >= next_claim:
                self._claim_soon = False
                next_claim = now + self._claim_interval
                await self._renew()
                retries = counters.retries
                claimed = await self._call(consumer.claim_idle, grace, self._read_count())
                if counters.retries != retries:
                    await self._recover(consumer, claimed)
                if claimed:
                    self._claim_soon = len(claimed) >= self._count  # more may be waiting
                    await self._deliver(claimed)
                    continue
            block = max(0.0, min(next_claim - now, self._max_block))
            retries = counters.retries
            records = await self._call(consumer.read_new, self._read_count(), block)
            if counters.retries != retries:
                await self._recover(consumer, records)
            if records:
                self._last_read = records[-1].entry_id
                await self._deliver(records)
            elif type(records) is RecordBatch and records.gap is not None:
                self._note_gap(records.gap)

    async def _recover(self, consumer: GroupConsumer, fresh: Sequence[Record]) -> None:
        """A read or claim failed before the retry that succeeded: its reply may have been lost
        after the backend had already made its entries pending for this consumer. Fetch this
        consumer's pending entries again now, rather than wait a grace period for the group to
        reclaim them, skipping those this subscription still holds."""
        held = {record.entry_id for record in fresh}
        held.update(self._held_ids())
        await self._deliver_own_pending(consumer, held)

    async def _deliver_own_pending(self, consumer: GroupConsumer, held: set[str] | None) -> None:
        """Deliver this consumer's pending entries: on start (``held`` None), or after a lost
        reply, except ``held`` (counted as ``recovered``)."""
        after: str | None = None
        while records := await self._call(consumer.read_own_pending, after, self._read_count()):
            after = records[-1].entry_id
            if held is not None:
                records = [record for record in records if record.entry_id not in held]
                self._counters.recovered += len(records)
            if records:
                await self._deliver(records)

    def _held_ids(self) -> set[str]:
        """Ids of entries this subscription has read and not settled: read-ahead, the event the
        application holds, finished ones whose ack has not landed, unsettled deliveries."""
        held = set(self._done)
        held.update(self._acking)
        held.update(self._unsettled)
        if self._current is not None:
            held.add(self._current)
        if self._leases is not None:
            self._leases.sync(self._outstanding)
            held.update(self._leases.waiting_ids())
        return held

    async def _pump_reader(self, reader: StreamReader) -> None:
        while True:
            records = await self._call(reader.read, self._read_count(), self._max_block)
            if records:
                await self._deliver(records)
            elif type(records) is RecordBatch and records.gap is not None:
                self._note_gap(records.gap)

    async def _deliver(self, records: Sequence[Record]) -> None:
        if type(records) is RecordBatch and records.gap is not None:
            self._note_gap(records.gap)
        read = len(records)
        self._counters.received += read
        if self._accepts is not None:
            records = self._drop_filtered(records, self._accepts)
        stream_id = self._stream_id
        # The common case, a first delivery of a good envelope in auto mode, is decoded inline;
        # everything else (redeliveries, custom decoders, manual mode, bad entries) goes
        # through `_prepare`.
        inline = self._fast_decode and not self._manual
        batch: list[Any] = []
        ids: list[str] = []
        nbytes = 0
        read_at = self._now()
        for record in records:
            entry_id = record.entry_id
            payload = record.payload
            if payload is not None:
                nbytes += len(payload)
            if inline and record.delivery_count == 1 and payload is not None:
                try:
                    event = decode_entry(payload, entry_id, stream_id)
                    if record.topic is not None:
                        set_event_topic(event, record.topic)
                    batch.append((entry_id, event))
                    ids.append(entry_id)
                    continue
                except Exception:
                    pass  # `_prepare` decodes it again and reports it, whatever it raised
            item = await self._prepare(record)
            if item is not None:
                batch.append(item)
                ids.append(entry_id)
        if read:
            # Per entry read, filtered-out ones included: they hold no read-ahead, and a stream
            # of them must still be read in full batches.
            self._entry_bytes = nbytes // read
        if not batch:
            return
        if self._pending_gap is not None:
            self._attach_gap(batch[0])
        # One hand-off per batch, not per event, once the whole batch fits in the buffer: the
        # application then has at most `buffer` events (and about `buffer_bytes` of payload)
        # waiting, and the reader holds one batch.
        size = len(batch)
        wake_at = max(0, self._options.buffer - size)
        wake_bytes = max(0, self._bytes_budget - nbytes)
        lease = Lease(ids, read_at) if self._leases is not None else None
        while self._outstanding > wake_at or self._bytes_out > wake_bytes:
            # The application is behind. While waiting on it, keep acking what it finishes and
            # renewing the lease of what waits, so neither is redelivered meanwhile.
            self._want_acks()
            await self._renew(lease)
            if self._outstanding <= wake_at and self._bytes_out <= wake_bytes:
                break
            self._room = room = anyio.Event()
            # Wake on whichever bound holds the pump back (taking events frees events; taking
            # the last event of a batch frees its bytes).
            self._wake_at = wake_at if self._outstanding > wake_at else -1
            self._wake_bytes = wake_bytes if self._bytes_out > wake_bytes else -1
            with anyio.move_on_after(self._claim_interval):
                await room.wait()
        self._outstanding += size
        self._bytes_out += nbytes
        if lease is not None and self._leases is not None:
            self._leases.handed(lease)
        if self._handoff.put((batch, lease, nbytes)):
            # The application was waiting: let it take the batch before this task goes on to
            # its next read, whose request would otherwise delay the event by a round trip's
            # worth of work.
            await checkpoint()

    def _drop_filtered(self, records: Sequence[Record], accepts: TopicFilter) -> list[Record]:
        """The records whose topic the filter accepts. The others are never handed out (nor
        decoded, nor dead-lettered, whatever their delivery count); in a group they are
        acknowledged with the application's next acks (the acker sends them, in the same round
        trips), so that they do not stay pending for ever as pulse leaves them."""
        kept: list[Record] = []
        dropped: list[str] = []
        for record in records:
            if accepts(record.topic):
                kept.append(record)
            else:
                dropped.append(record.entry_id)
        if dropped:
            self._counters.filtered += len(dropped)
            if self._group is not None:
                self._done.extend(dropped)
        return kept

    def _note_gap(self, gap: Gap) -> None:
        """Count and report entries lost before this subscription read them; the next item
        handed out carries the gap (``StreamEvent.gap`` / ``Delivery.gap``)."""
        counters = self._counters
        counters.gaps += 1
        if gap.count:
            counters.skipped += gap.count
        self._report(EntriesSkippedError(gap))
        pending = self._pending_gap
        if pending is not None:  # two losses before anything was handed out: one hole
            count = (
                None if pending.count is None or gap.count is None else pending.count + gap.count
            )
            gap = Gap(stream_id=gap.stream_id, after=pending.after, before=gap.before, count=count)
        self._pending_gap = gap

    def _attach_gap(self, item: Any) -> None:
        gap, self._pending_gap = self._pending_gap, None
        if self._manual:
            item.gap = gap
            return
        event = item[1]
        if type(event) is StreamEvent:
            set_event_gap(event, gap)

    async def _prepare(self, record: Record) -> Any:
        """What the application gets for ``record`` (an ``(entry id, event)`` pair in auto mode,
        a :class:`Delivery` in manual mode), or None when the entry is dead-lettered instead:
        delivered too often, or (in auto mode) undecodable."""
        counters = self._counters
        grouped = self._group is not None
        if record.delivery_count > 1:
            counters.redelivered += 1
            max_deliveries = self._options.max_deliveries
            if grouped and max_deliveries and record.delivery_count > max_deliveries:
                attempts = record.delivery_count - 1
                await self._dead_letter(
                    record,
                    f"not acknowledged after {attempts} deliveries "
                    f"(max_deliveries={max_deliveries})",
                    attempts=attempts,
                )
                return None
        event: Any = None
        error: DecodeError | None = None
        payload = record.payload
        if payload is None:
            error = DecodeError(f"entry {record.entry_id} has no payload field")
        else:
            try:
                if self._fast_decode:
                    event = decode_entry(payload, record.entry_id, self._stream_id)
                    if record.topic is not None:
                        set_event_topic(event, record.topic)
                else:
                    event = self._decoder(payload)
                    if self._letters:
                        event = attrs.evolve(event, letter_id=record.entry_id)
            except DecodeError as exc:
                error = exc
            except Exception as exc:
                error = DecodeError(f"decoder failed: {exc!r}")
                error.__cause__ = exc
        if error is not None:
            counters.decode_errors += 1
            if not self._manual:
                self._report(
                    DecodeError(f"undecodable entry {self._stream_id}/{record.entry_id}: {error}")
                )
                if grouped:
                    await self._dead_letter(record, f"undecodable: {error}")
                return None
        if self._manual:
            if grouped:
                self._unsettled.add(record.entry_id)
            return Delivery(
                self,  # type: ignore[arg-type]
                event=event,
                decode_error=error,
                raw_payload=payload if payload is not None else b"",
                name=record.name,
                entry_id=record.entry_id,
                stream_id=self._stream_id,
                delivery_count=record.delivery_count,
                topic=record.topic,
            )
        return (record.entry_id, event)

    async def _renew(self, held: Lease | None = None) -> None:
        """Renew the lease of events read but not yet taken by the application (and of ``held``,
        a batch the pump still holds), so a slow consumer's read-ahead is not redelivered while
        it waits. Only while the application makes progress: a consumer stuck on one event for a
        whole grace period stops renewing, and the group reclaims what it holds. A lease that
        already ran out is never renewed: its entries may be another consumer's now."""
        leases, consumer = self._leases, self._consumer
        if leases is None or consumer is None:
            return
        now = self._now()
        due = leases.due(now, self._outstanding, held)
        if not due:
            return
        await self._call(consumer.touch, [i for lease in due for i in lease.ids])
        leases.renewed(due, now)

    # -- backend calls, retries, acks, dead letters ---------------------------------------------

    async def _call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Call the backend, retrying while it is unreachable and re-creating a vanished group,
        with jittered backoff; past ``reconnect_timeout`` raise :class:`SubscriptionError`."""
        while True:
            try:
                result = await fn(*args)
            except StreamDestroyedError:
                raise
            except GroupLostError as exc:
                self._report(exc)
                await self._backoff.wait(exc)
                await self._recreate_group()
            except BackendUnavailableError as exc:
                self._counters.retries += 1
                self._report(exc)
                await self._backoff.wait(exc)
            else:
                self._backoff.reset()
                return result

    async def _recreate_group(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        # Resume after the last entry we read: nothing newer is lost, nothing older replayed.
        # Having read nothing, never re-create at "newest": entries appended since the group
        # vanished (FLUSHALL, a restart without persistence) would be skipped. From the oldest,
        # a wiped stream holds only those; a stream whose group alone was destroyed is replayed.
        start = StartPosition.after(self._last_read) if self._last_read else self._start
        if start.kind == "newest":
            start = StartPosition.oldest()
        try:
            await consumer.ensure_group(start)
        except StreamDestroyedError:
            raise
        except BackendUnavailableError as exc:
            self._report(exc)  # the next attempt backs off further
            return
        self._counters.groups_recreated += 1
        log.warning(
            "consumer group %r on %r was re-created at %s", self._group, self._stream_id, start
        )

    async def _ack_ids(self, entry_ids: Sequence[str]) -> Sequence[None]:
        consumer = self._consumer
        if consumer is None or not entry_ids:
            return [None] * len(entry_ids)
        await self._call(consumer.ack, entry_ids)
        self._counters.acknowledged += len(entry_ids)
        return [None] * len(entry_ids)

    async def _flush_acks(self, *, final: bool = False) -> None:
        if not self._done:
            return
        done, self._done = self._done, []
        self._acking = done
        try:
            await self._acks.submit(done)
        except BaseException as exc:
            # Not acknowledged (or not known to be: XACK is idempotent): the final flush on
            # close tries these again.
            self._done[:0] = done
            if final and isinstance(exc, StreamsinkError):
                # Closing: the entries stay pending and will be redelivered; nothing is lost.
                log.warning("could not acknowledge %d entries on close: %s", len(done), exc)
                return
            raise
        finally:
            self._acking = []

    async def _dead_letter(
        self, record: Record, reason: str, *, attempts: int | None = None
    ) -> bool:
        """Write ``record``'s dead letter, then acknowledge it (group mode). Returns False when
        the dead letter could not be written (the backend refused it or is unreachable): then
        nothing is acknowledged, the entry stays pending and the group delivers it again after
        the grace period, when writing it is tried again.

        A dead letter is never itself dead-lettered (consuming a ``:dlq`` stream must not grow
        ``:dlq:dlq``): such an entry is only reported and acknowledged.
        """
        target = self._dead_letter_stream
        if record.name == DEAD_LETTER_EVENT:
            target = None
            reason += "; it is itself a dead letter, so it is not dead-lettered again"
        if target is not None:
            letter = DeadLetter(
                origin_stream=self._stream_id,
                entry_id=record.entry_id,
                group=self._group,
                consumer=self.consumer,
                attempts=record.delivery_count if attempts is None else attempts,
                reason=reason,
                event_name=record.name,
                payload=record.payload,
            )
            entry = Entry(target, DEAD_LETTER_EVENT, encode_dead_letter(letter))
            try:
                await self._backend.append([entry])
            except (SinkClosedError, StreamDestroyedError):
                raise
            except StreamsinkError as exc:
                self._counters.dead_letter_failures += 1
                self._report(
                    StreamsinkError(
                        f"could not dead-letter {self._stream_id}/{record.entry_id} to {target} "
                        f"({reason}): {exc}; the entry stays pending and is tried again when "
                        "it is redelivered"
                    )
                )
                return False
        if self._group is not None:
            await self._acks.submit([record.entry_id])
        self._counters.dead_lettered += 1
        where = target or "nowhere (dropped)"
        self._report(
            StreamsinkError(
                f"entry {self._stream_id}/{record.entry_id} dead-lettered to {where}: {reason}"
            )
        )
        return True

    def _report(self, error: StreamsinkError) -> None:
        self._subscriber._report(error)

    # -- manual settling (called by Delivery) ---------------------------------------------------

    def _require_open(self, what: str) -> None:
        if self._state != "open":
            raise AckError(f"cannot {what}: the subscription is closed; the entry stays pending")

    async def _settle_ack(self, delivery: Delivery) -> None:
        self._require_open("ack")
        if self._group is None:
            return
        try:
            await self._acks.submit([delivery.entry_id])
        except SubscriptionError as exc:
            raise AckError(f"ack of {delivery.entry_id} failed: {exc}") from exc
        self._unsettled.discard(delivery.entry_id)

    async def _settle_nack(self, delivery: Delivery) -> None:
        self._require_open("nack")
        if self._consumer is None:
            return
        await self._settle_call(self._consumer.nack, delivery, "nack")
        self._unsettled.discard(delivery.entry_id)
        self._claim_soon = True

    async def _renew_delivery(self, delivery: Delivery) -> None:
        self._require_open("renew")
        if self._consumer is None:
            return
        await self._settle_call(self._consumer.touch, delivery, "in_progress")

    async def _settle_term(self, delivery: Delivery, reason: str) -> None:
        self._require_open("term")
        record = Record(
            delivery.entry_id, delivery.name, delivery.raw_payload, None, delivery.delivery_count
        )
        try:
            written = await self._dead_letter(record, reason)
        except SubscriptionError as exc:
            raise AckError(f"term of {delivery.entry_id} failed: {exc}") from exc
        if not written:
            raise AckError(
                f"term of {delivery.entry_id} failed: its dead letter could not be written; "
                "the entry stays pending"
            )
        self._unsettled.discard(delivery.entry_id)

    async def _settle_call(
        self, fn: Callable[[Sequence[str]], Awaitable[None]], delivery: Delivery, what: str
    ) -> None:
        try:
            await fn([delivery.entry_id])
        except StreamsinkError as exc:
            raise AckError(f"{what} of {delivery.entry_id} failed: {exc}") from exc

    async def _close_handles(self) -> None:
        for handle in (self._consumer, self._reader):
            if handle is not None:
                try:
                    await handle.aclose()
                except StreamsinkError as exc:
                    log.warning("closing %s on %r: %s", type(handle).__name__, self._stream_id, exc)


def _dead_letter_target(options: SubscriberOptions, stream_id: str, *, letters: bool) -> str | None:
    """Where this subscription writes dead letters: ``dead_letter_stream(stream_id)``, validated
    now; none for a dead-letter subscription, nor (with the default naming) for a stream that is
    itself a dead-letter stream."""
    make = options.dead_letter_stream
    if letters or make is None:
        return None
    if make is default_dead_letter_stream and stream_id.endswith(":dlq"):
        return None
    target = dead_letter_stream_id(make, stream_id)
    if target == stream_id:
        return None
    return target
