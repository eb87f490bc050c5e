"""``DrainSubscription``: the shards of a drain (docs/drain.md), each an ordinary subscription,
merged into one iterator.

Every shard is read by a manual-mode :class:`~streamsink.Subscription` of the subscriber, so
groups, redelivery, dead letters, gaps and statistics are the core's, unchanged. A forwarder
task per shard hands its deliveries, one at a time, to a queue the application takes from in
arrival order; while a delivery waits there its lease is renewed (``in_progress``), as the
read-ahead of a subscription is, so a slow application does not see it redelivered elsewhere.
In auto mode the merger settles for the application: it acknowledges an event once the
application asks for the next one or leaves the loop normally (contract rule 8), and reports and
dead-letters undecodable entries (rule 11).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Generic, Self, TypeVar

import anyio
import attrs
from anyio.abc import TaskGroup

from ._consuming import Delivery, Subscription, SubscriptionStatistics
from ._events import StreamEvent, set_event_gap
from ._exceptions import DecodeError, StreamsinkError, SubscriptionError

__all__ = ["DrainSubscription"]

log = logging.getLogger("streamsink")
ItemT = TypeVar("ItemT")

#: bound on settling the last event and in-flight acks when the drain closes
_CLOSE_TIMEOUT = 2.0


class _Waiting:
    """A delivery a forwarder handed over, and whether the application has taken it."""

    __slots__ = ("delivery", "taken")

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery
        self.taken = anyio.Event()


class DrainSubscription(Generic[ItemT]):
    """Events (auto mode) or :class:`~streamsink.Delivery` objects (manual mode) of every shard
    of a drain, as one iterator; made by ``StreamSubscriber.subscribe_drain`` /
    ``subscribe_drain_manual``.

    Each event is the one its sink sent: ``stream_id``, ``entry_id`` and ``topic`` are those of
    its own stream (``session/<id>``), not of the shard. A manual delivery's ``stream_id`` and
    ``entry_id`` are the shard's (what it settles), its ``event``'s are the origin's.

    Iteration ends without error once every shard ended cleanly (closed, or destroyed), and
    raises :class:`SubscriptionError` when one of them failed (the others are then closed).
    """

    def __init__(
        self,
        shards: Sequence[Subscription[Delivery]],
        *,
        manual: bool,
        renew_every: float,
        report: Callable[[StreamsinkError], None],
    ) -> None:
        self._shards = tuple(shards)
        self._manual = manual
        self._renew_every = renew_every
        self._report = report
        self._queue: deque[_Waiting] = deque()
        self._arrived = anyio.Event()
        self._running = 0
        self._failure: SubscriptionError | None = None
        self._current: Delivery | None = None  # auto mode: the event the application holds
        self._settling = 0  # auto mode: acks and dead letters in flight
        self._settled = anyio.Event()
        self._taken_at = 0.0  # when the application last took an item (event loop time)
        self._forwarders: list[anyio.CancelScope] = []
        self._stack: AsyncExitStack | None = None
        self._tasks: TaskGroup | None = None
        self._entered = False
        self._closed = False

    @property
    def shards(self) -> tuple[Subscription[Delivery], ...]:
        """The subscriptions of the shards, in shard order (for per-shard statistics)."""
        return self._shards

    @property
    def stream_ids(self) -> tuple[str, ...]:
        return tuple(shard.stream_id for shard in self._shards)

    def statistics(self) -> SubscriptionStatistics:
        """The shards' statistics, summed."""
        totals: dict[str, int] = {}
        for shard in self._shards:
            for name, value in attrs.asdict(shard.statistics()).items():
                totals[name] = totals.get(name, 0) + value
        return SubscriptionStatistics(**totals)

    async def __aenter__(self) -> Self:
        if self._entered:
            raise SubscriptionError("a drain subscription can be entered only once")
        self._entered = True
        stack = AsyncExitStack()
        try:
            for shard in self._shards:
                await stack.enter_async_context(shard)
            self._tasks = await stack.enter_async_context(anyio.create_task_group())
        except BaseException:
            with anyio.CancelScope(shield=True):
                await stack.aclose()
            raise
        self._stack = stack
        self._taken_at = anyio.current_time()
        self._running = len(self._shards)
        for shard in self._shards:
            self._tasks.start_soon(self._forward, shard)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._stack is None:
            return
        self._closed = True
        current, self._current = self._current, None
        try:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT):
                # Leaving normally finishes the current event; by an exception leaves it pending.
                if exc is None and current is not None:
                    self._settle(current)
                while self._settling:
                    await self._settled.wait()
        finally:
            self._stop_forwarders()
            assert self._tasks is not None
            self._tasks.cancel_scope.cancel()  # acks still in flight after the timeout
            stack, self._stack = self._stack, None
            await stack.aclose()

    async def aclose(self) -> None:
        """Stop every shard: iteration ends at the next step; what was read and not handed out
        stays pending in the group (redelivered later)."""
        self._closed = True
        self._stop_forwarders()
        for shard in self._shards:
            await shard.aclose()
        self._arrived.set()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ItemT:
        if self._stack is None:
            raise SubscriptionError(
                "iterate a drain inside `async with subscriber.subscribe_drain(...) as events:`"
            )
        current, self._current = self._current, None
        if current is not None:
            self._settle(current)
        while True:
            while True:
                if self._failure is not None:
                    raise self._failure
                if self._closed:
                    raise StopAsyncIteration
                if self._queue:
                    break
                if self._running == 0:
                    raise StopAsyncIteration
                self._arrived = anyio.Event()
                await self._arrived.wait()
            waiting = self._queue.popleft()
            waiting.taken.set()
            self._taken_at = anyio.current_time()
            delivery = waiting.delivery
            if self._manual:
                return delivery  # type: ignore[return-value]
            if delivery.decode_error is None:
                self._current = delivery
                event = delivery.event
                if delivery.gap is not None and type(event) is StreamEvent:
                    set_event_gap(event, delivery.gap)  # as a subscription marks it in auto mode
                return event  # type: ignore[return-value]
            self._poison(delivery)

    # -- the tasks ------------------------------------------------------------------------------

    async def _forward(self, shard: Subscription[Delivery]) -> None:
        """Hand ``shard``'s deliveries over one at a time. The one waiting has its lease renewed
        while the application makes progress (took something within a grace period), as a
        subscription renews its read-ahead: a handler stuck on one event does not keep the
        waiting ones from the rest of the group."""
        scope = anyio.CancelScope()
        self._forwarders.append(scope)
        if self._closed or self._failure is not None:
            scope.cancel()  # stopped before this task ran
        try:
            with scope:
                async for delivery in shard:
                    waiting = _Waiting(delivery)
                    self._queue.append(waiting)
                    self._arrived.set()
                    # The shard may hand a delivery over late in its lease (up to 0.9 of the
                    # grace period old): the first renewal comes soon, the next ones every
                    # third of the grace period.
                    wait = self._renew_every / 10
                    while not waiting.taken.is_set():
                        with anyio.move_on_after(wait):
                            await waiting.taken.wait()
                        wait = self._renew_every
                        if not waiting.taken.is_set() and self._progressing():
                            await self._renew(delivery)
        except SubscriptionError as exc:
            self._fail(exc)
        finally:
            self._running -= 1
            self._arrived.set()

    def _progressing(self) -> bool:
        return anyio.current_time() - self._taken_at < self._renew_every * 3

    async def _renew(self, delivery: Delivery) -> None:
        try:
            await delivery.in_progress()
        except StreamsinkError as exc:  # the entry may be redelivered elsewhere; reading goes on
            self._report(exc)

    def _settle(self, delivery: Delivery, reason: str | None = None) -> None:
        """Acknowledge (or, with ``reason``, dead-letter) ``delivery`` in the background: the
        application does not wait for the round trip, as in a subscription's auto mode."""
        assert self._tasks is not None
        self._settling += 1
        self._tasks.start_soon(self._settle_now, delivery, reason)

    async def _settle_now(self, delivery: Delivery, reason: str | None) -> None:
        try:
            if reason is None:
                await delivery.ack()
            else:
                await delivery.term(reason)
        except StreamsinkError as exc:
            if reason is None and not self._closed:
                error = SubscriptionError(
                    f"drain ack of {delivery.stream_id}/{delivery.entry_id} failed: {exc}"
                )
                error.__cause__ = exc
                self._fail(error)
            else:  # a dead letter not written: the entry stays pending and comes back
                self._report(exc)
        finally:
            self._settling -= 1
            if not self._settling:
                self._settled.set()
                self._settled = anyio.Event()

    def _poison(self, delivery: Delivery) -> None:
        """Auto mode: report an undecodable entry and dead-letter it, as a subscription does."""
        error = delivery.decode_error
        report = DecodeError(
            f"undecodable entry {delivery.stream_id}/{delivery.entry_id}: {error}",
            stream_id=delivery.stream_id,
            entry_id=delivery.entry_id,
            payload=delivery.raw_payload,
        )
        report.__cause__ = error
        self._report(report)
        self._settle(delivery, f"undecodable: {error}")

    def _fail(self, error: SubscriptionError) -> None:
        if self._failure is None:
            self._failure = error
        self._stop_forwarders()
        self._arrived.set()

    def _stop_forwarders(self) -> None:
        for scope in self._forwarders:
            scope.cancel()

    def __repr__(self) -> str:
        mode = "manual" if self._manual else "auto"
        return f"<DrainSubscription {mode} shards={list(self.stream_ids)!r}>"
