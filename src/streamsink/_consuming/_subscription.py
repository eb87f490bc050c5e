"""``Subscription``: one stream read through a group or as a fan-out reader (docs/contract.md
rules 6-17).

A pump task (:mod:`._pump`) reads from the backend into a bounded read-ahead (:mod:`._readahead`);
the application takes events from it. In auto mode an event is acknowledged (:mod:`._acking`)
once the application asks for the next one or leaves the loop normally, never when it is merely
buffered, so a crash loses nothing: whatever was read but not finished stays pending in the group
and is redelivered. This class wires the parts together and runs the lifecycle.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from functools import partial
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

import anyio
import attrs

from .._exceptions import StreamsinkError, SubscriptionError
from .._options import SubscriberOptions
from .._sharing import SHARED_MAX_BLOCK, open_shared_reader, shares_reads
from ..backend import Backend, DeliveryKey, GroupConsumer, StartPosition, StreamReader
from ..lowlevel import clock as loop_clock
from ._handling import HandlingLeases
from ._leases import ReadAheadLeases
from ._lifecycle import Lifecycle
from ._observing import ProcessTracker
from ._parts import loop_parts, wire_parts
from ._pump import Pump
from ._readahead import NOTHING, ReadAhead
from ._reaper import ConsumerReaper
from ._settings import Settings
from ._statistics import SubscriptionStatistics

__all__ = ["Subscription", "SubscriptionOwner"]

log = logging.getLogger("streamsink")
ItemT = TypeVar("ItemT")

#: bound on the final ack flush and consumer close, which may find the backend gone
_CLOSE_TIMEOUT = 2.0

_NEW, _OPEN, _STOPPING, _CLOSED = (
    Lifecycle.NEW,
    Lifecycle.OPEN,
    Lifecycle.STOPPING,
    Lifecycle.CLOSED,
)


class SubscriptionOwner(Protocol):
    """What a subscription tells whoever opened it (a :class:`~streamsink.StreamSubscriber`)."""

    def report(self, error: StreamsinkError) -> None:
        """A non-terminal error (``SubscriberOptions.on_error``); must not raise."""
        ...

    def opened(self, subscription: Subscription[Any]) -> None:
        """``subscription`` was entered: it is live until :meth:`closed`."""
        ...

    def closed(self, subscription: Subscription[Any]) -> None:
        """``subscription`` was left."""
        ...


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
        owner: SubscriptionOwner,
        backend: Backend,
        options: SubscriberOptions,
        settings: Settings,
        start: StartPosition,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Made by :class:`~streamsink.StreamSubscriber`; ``clock`` (monotonic seconds) times
        claims and leases, by default the event loop's (:func:`streamsink.lowlevel.clock`)."""
        # A fan-out reader reads with the others where the backend shares reads.
        shared = settings.group is None and options.shared_reads and shares_reads(backend)
        if shared and options.max_block is None:
            # A shared reader is woken by all that a periodic return would notice (close,
            # cancel, destroy, a failed read), so it waits longer: 10,000 idle readers
            # returning every 5 s cost ~9 % of a core, every 60 s ~0.2 %
            # (python -m benchmarks.fanout_shared).
            settings = attrs.evolve(settings, max_block=SHARED_MAX_BLOCK)
        self._shared = shared
        self._owner = owner
        self._backend = backend
        self._settings = settings
        self._start = start
        self._clock = clock
        self._parts = parts = wire_parts(
            owner.report, backend, options, settings, start, self._claim_soon
        )
        self._counters = parts.counters
        self._calls = parts.calls
        self._acker = parts.acker
        # Shared with the acker (see `Acker.done`): the hot path appends to it directly.
        self._done = parts.acker.done
        self._settler = parts.settler
        self._intake = parts.intake
        self._gaps = parts.gaps
        self._state = _NEW
        self._terminal: SubscriptionError | None = None
        self._current: str | None = None  # auto mode: id of the event the application holds
        self._pump_scope = anyio.CancelScope()
        self._stack: AsyncExitStack | None = None
        # Made on entry, in the event loop (see `_open_parts`).
        self._readahead: ReadAhead
        self._leases: ReadAheadLeases | None = None
        self._pump: Pump | None = None
        self._reader: StreamReader | None = None
        self._handling: HandlingLeases | None = None
        self._reaper: ConsumerReaper | None = None
        self._reaper_scope = anyio.CancelScope()
        if settings.group is not None and settings.reap_idle is not None:
            self._reaper = ConsumerReaper(
                backend,
                stream_id=settings.stream_id,
                group=settings.group,
                consumer=settings.consumer_name,
                bound=settings.reap_idle,
                counters=self._counters,
                report=owner.report,
            )
        self._tracker: ProcessTracker | None = None
        if options.instrument is not None:
            self._tracker = ProcessTracker(options.instrument, settings)
            self._settler.observer = self._tracker.settled

    # -- public surface -------------------------------------------------------------------------

    @property
    def stream_id(self) -> str:
        return self._settings.stream_id

    @property
    def group(self) -> str | None:
        return self._settings.group

    @property
    def consumer(self) -> str | None:
        """This consumer's name in the group (None for fan-out readers)."""
        return self._settings.consumer_name if self._settings.group else None

    def statistics(self) -> SubscriptionStatistics:
        return self._counters.snapshot()

    async def __aenter__(self) -> Self:
        if self._state is not _NEW:
            raise SubscriptionError("a subscription can be entered only once")
        self._state = _OPEN
        settings, calls, backend = self._settings, self._calls, self._backend
        handle: GroupConsumer | StreamReader
        try:
            if settings.group is not None:
                handle = calls.consumer = await calls.call(
                    partial(
                        backend.open_group_consumer, ack_grace_period=settings.ack_grace_period
                    ),
                    settings.stream_id,
                    settings.group,
                    settings.consumer_name,
                    self._start,
                )
            elif self._shared:
                handle = self._reader = await calls.call(
                    partial(
                        open_shared_reader,
                        bound=settings.buffer,
                        bound_bytes=settings.buffer_bytes,
                    ),
                    backend,
                    settings.stream_id,
                    self._start,
                )
            else:
                handle = self._reader = await calls.call(
                    backend.open_reader, settings.stream_id, self._start
                )
        except BaseException:
            self._state = _CLOSED
            raise
        self._settler.open = True
        pump = self._open_parts()
        self._acker.open()
        stack = AsyncExitStack()
        task_group = await stack.enter_async_context(anyio.create_task_group())
        task_group.start_soon(pump.run, handle, self._fail)
        if self._reaper is not None:
            task_group.start_soon(self._run_reaper, self._reaper)
        # Auto mode acknowledges what a group's application finished; a filtered group also
        # what its filter drops, in manual mode too. A fan-out reader has nothing to ack.
        if settings.group is not None and (not settings.manual or self._intake.filters):
            task_group.start_soon(self._acker.run, self._fail)
        self._stack = stack
        self._owner.opened(self)
        return self

    async def _run_reaper(self, reaper: ConsumerReaper) -> None:
        with self._reaper_scope:  # cancelled with the pump
            await reaper.run()

    def _open_parts(self) -> Pump:
        """The parts that need the running event loop: clock, leases, read-ahead, pump."""
        now = self._clock or loop_clock()
        self._now = now
        self._leases, self._readahead, self._pump = loop_parts(
            self._settings, self._parts, now, scope=self._pump_scope, held=self._held_ids
        )
        self._handling = None if self._leases is None else self._leases.handling
        self._settler.handling = self._handling
        return self._pump

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if not self._state.entered:
            return None
        self._state = _CLOSED
        self._settler.open = False
        # Leaving normally finishes the current event; leaving by an exception leaves it pending.
        if exc is None and self._current is not None:
            self._done.append(self._current)
        self._current = None
        if self._tracker is not None:
            self._tracker.close(exc)
        self._pump_scope.cancel()
        self._reaper_scope.cancel()
        self._acker.stop()
        try:
            # The pump never raises (it records terminal errors), so the task group is exited
            # clean: the application's own exception then propagates as is, not in a group.
            if self._stack is not None:
                await self._stack.aclose()
            return None
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT):
                await self._acker.flush(final=True)
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT):
                await self._close_handle()
            self._owner.closed(self)

    async def aclose(self) -> None:
        """Stop the subscription from any task of the same event loop: reading stops at once and
        iteration ends at the next step. Events read but not yet handed out stay pending in the
        group (redelivered later); leaving the ``async with`` block releases the rest.
        """
        if self._state is _OPEN:
            self._state = _STOPPING
        # Also before entering: the pump then ends as soon as it starts.
        self._pump_scope.cancel()
        self._reaper_scope.cancel()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ItemT:
        state = self._state
        if state is not _OPEN and state is not _STOPPING:
            raise SubscriptionError(
                "iterate a subscription inside `async with subscriber.subscribe(...) as sub:`"
            )
        current = self._current
        if current is not None:
            if self._settings.group is not None:  # a fan-out reader acks nothing
                self._done.append(current)
            self._current = None
            if self._tracker is not None:
                self._tracker.finished()
        if state is _STOPPING:
            self._end()
        readahead = self._readahead
        # ReadAhead.take inlined for its common case (an event of a batch without a lease, or
        # whose lease holds, and no pump waiting for room): one call less per event, ~0.1 µs.
        items = readahead.items
        lease = readahead.items_lease
        if (
            items
            and readahead.wake_at < 0
            and (lease is None or self._now() - lease.renewed_at < readahead.lease_limit)
        ):
            readahead.outstanding -= 1
            item = items.popleft()
        else:
            item = readahead.take()
        while item is NOTHING:
            if readahead.items:  # the batch's lease ran out
                self._expire()
            else:
                try:
                    # Nothing left to take: acknowledge what is finished now, not at the
                    # pump's next read.
                    await readahead.refill(self._acker.want)
                except anyio.EndOfStream:
                    self._end()
            item = readahead.take()
        if self._settings.manual:
            if self._handling is not None:
                # The lease runs from its batch's last renewal, not from this hand-out.
                batch = readahead.items_lease
                self._handling.handed(
                    DeliveryKey(item.entry_id, item.delivery_count),
                    None if batch is None else batch.renewed_at,
                )
            if self._tracker is not None:
                self._tracker.handed(item, item.entry_id)
            return item  # type: ignore[no-any-return]
        if self._settings.group is None and self._tracker is None:
            # A fan-out reader acknowledges nothing: no id to keep (nor acker task to wake).
            return item[1]  # type: ignore[no-any-return]
        self._current, event = item
        if self._tracker is not None:
            self._tracker.handed(event, self._current)
        return event  # type: ignore[no-any-return]

    # -- the parts' callbacks -------------------------------------------------------------------

    def _expire(self) -> None:
        """Drop what is left of the current batch: its lease ran out, so the group may have
        given it to another consumer; handing it out here would handle it twice. The entries stay
        pending (this consumer's, or whoever claimed them) and nothing of them is acknowledged."""
        count = self._readahead.expire()
        self._counters.expired += count
        self._owner.report(
            StreamsinkError(
                f"{count} read-ahead entries of {self.stream_id!r} were not handed out: their "
                f"lease ran out (ack_grace_period={self._settings.ack_grace_period:g} s) before "
                "the application took them, so they are left for redelivery"
            )
        )

    def _end(self) -> None:
        if self._terminal is not None:
            raise self._terminal
        raise StopAsyncIteration

    def _fail(self, exc: Exception) -> None:
        """Record a terminal failure (iteration raises it) and stop reading."""
        if self._terminal is None:
            if isinstance(exc, SubscriptionError):
                self._terminal = exc
            else:
                error = SubscriptionError(f"subscription to {self.stream_id!r} failed: {exc!r}")
                error.__cause__ = exc
                self._terminal = error
        self._pump_scope.cancel()

    def _claim_soon(self) -> None:
        if self._pump is not None:
            self._pump.claim_soon = True

    def _held_ids(self) -> set[str]:
        """Ids of entries this subscription has read and not settled: read-ahead, the event the
        application holds, finished ones whose ack has not landed, unsettled deliveries."""
        held = set(self._done)
        held.update(self._acker.acking)
        held.update(self._settler.unsettled)
        if self._current is not None:
            held.add(self._current)
        if self._leases is not None:
            self._leases.sync(self._readahead.outstanding)
            held.update(self._leases.waiting_ids())
        return held

    async def _close_handle(self) -> None:
        handle = self._calls.consumer or self._reader
        if handle is not None:
            try:
                await handle.aclose()
            except StreamsinkError as exc:
                log.warning("closing %s on %r: %s", type(handle).__name__, self.stream_id, exc)
