"""A lifecycle for worker processes: handle events until SIGTERM or SIGINT, then shut down
within a deadline."""

from __future__ import annotations

import logging
import math
import signal
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import anyio
import attrs

from ._consuming import Delivery, Subscription
from ._drain_subscription import DrainSubscription
from ._events import Event
from ._exceptions import ConfigurationError, StreamsinkError

__all__ = ["Worker"]

log = logging.getLogger("streamsink")

EventHandler = Callable[[Any], Awaitable[None]]
"""An async callable taking one event (what the subscription's decoder yields)."""

DEFAULT_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)


@attrs.frozen(slots=True)
class _Consumer:
    subscription: Subscription[Any] | DrainSubscription[Any]
    handler: EventHandler


class Worker:
    """Runs event handlers over subscriptions until told to stop, then shuts down gracefully.

    ``consume(subscription, handler)`` registers a subscription (not entered yet) whose items go
    to ``handler``, one at a time, in order. ``await run()`` enters them all and returns once
    they ended. A stop comes from SIGTERM or SIGINT (``signals``; handled only when ``run`` is
    on the main thread) or from :meth:`stop`; then:

    1. every subscription stops reading at once; an event already handed to a handler is
       finished (and settled as below), nothing new starts;
    2. after ``shutdown_timeout`` seconds (or at a second signal) handlers still running are
       cancelled: their events stay pending in their groups, redelivered after the grace period;
    3. the subscriptions are closed and ``run`` returns.

    Settling, by the subscription's mode:

    - **manual** (``subscribe_manual``; use it for groups): a handler that returns acks the
      delivery (unless it settled it itself), one that raises is logged and nacks it, so it is
      redelivered and dead-lettered after ``max_deliveries``; an undecodable entry is termed
      (dead-lettered) with its decode error without calling the handler;
    - **auto** (``subscribe``, fan-out readers, drains): the handler's event is acknowledged
      when it returns; an exception is logged and the next event is handled: in a group, that
      acknowledges the failed event, so prefer manual mode where failures must be redelivered.

    An error of a subscription itself (the group lost for good, the stream destroyed, …) ends
    the worker: the others are stopped as above and ``run`` raises the first such error.

    :raises ConfigurationError: a negative or non-finite ``shutdown_timeout``, or a ``consume``
        of something that is not a subscription.
    """

    def __init__(
        self,
        *,
        shutdown_timeout: float = 10.0,
        signals: Sequence[signal.Signals] = DEFAULT_SIGNALS,
    ) -> None:
        if (
            isinstance(shutdown_timeout, bool)
            or not isinstance(shutdown_timeout, int | float)
            or not math.isfinite(shutdown_timeout)
            or shutdown_timeout < 0
        ):
            raise ConfigurationError(
                f"Worker shutdown_timeout={shutdown_timeout!r} is invalid: "
                "expected a finite number of seconds >= 0"
            )
        self._shutdown_timeout = float(shutdown_timeout)
        self._signals = tuple(signals)
        self._consumers: list[_Consumer] = []
        self._stopping: anyio.Event | None = None
        self._stop_asked = False
        self._running = False
        self._failures: list[StreamsinkError] = []

    def consume(
        self, subscription: Subscription[Any] | DrainSubscription[Any], handler: EventHandler
    ) -> None:
        """Hand every item of ``subscription`` to ``handler`` once the worker runs."""
        if not isinstance(subscription, Subscription | DrainSubscription):
            raise ConfigurationError(
                f"Worker.consume() takes a subscription (subscriber.subscribe(...)), "
                f"got {type(subscription).__name__}"
            )
        if not callable(handler):
            raise ConfigurationError(
                f"Worker.consume() handler must be an async callable, got {handler!r}"
            )
        if self._running:
            raise ConfigurationError("Worker.consume() after run() started")
        self._consumers.append(_Consumer(subscription, handler))

    def stop(self) -> None:
        """Ask the worker to shut down, as a signal would (from the worker's event loop)."""
        self._stop_asked = True
        if self._stopping is not None:
            self._stopping.set()

    async def run(self) -> None:
        """Run until every subscription ended; a stop shuts down as the class describes."""
        if self._running:
            raise ConfigurationError("Worker.run() is already running")
        self._running = True
        self._failures = []
        self._stopping = anyio.Event()
        if self._stop_asked:
            self._stopping.set()
        try:
            async with anyio.create_task_group() as tg:
                loops = anyio.CancelScope()
                tg.start_soon(self._supervise, loops, tg.cancel_scope)
                with loops:
                    async with anyio.create_task_group() as handlers:
                        for consumer in self._consumers:
                            handlers.start_soon(self._consume, consumer)
                tg.cancel_scope.cancel()  # every loop ended: the supervisor is done too
        finally:
            self._running = False
        if self._failures:
            raise self._failures[0]

    async def _supervise(self, loops: anyio.CancelScope, worker: anyio.CancelScope) -> None:
        stopping = self._stopping
        assert stopping is not None
        handle_signals = (
            bool(self._signals) and threading.current_thread() is threading.main_thread()
        )
        async with anyio.create_task_group() as tg:
            if handle_signals:
                tg.start_soon(self._watch_signals, stopping, loops)
            await stopping.wait()
            log.info("streamsink worker stopping: %d subscriptions", len(self._consumers))
            for consumer in self._consumers:
                await consumer.subscription.aclose()
            loops.deadline = min(loops.deadline, anyio.current_time() + self._shutdown_timeout)
            # The signal watcher stays: a second signal cancels the handlers at once.

    async def _watch_signals(self, stopping: anyio.Event, loops: anyio.CancelScope) -> None:
        with anyio.open_signal_receiver(*self._signals) as received:
            async for signum in received:
                if stopping.is_set():
                    log.warning("streamsink worker: second %s, cancelling handlers", signum.name)
                    loops.cancel()
                    return
                log.info("streamsink worker: %s, shutting down", signum.name)
                stopping.set()

    async def _consume(self, consumer: _Consumer) -> None:
        handler = consumer.handler
        try:
            async with consumer.subscription as items:
                async for item in items:
                    if isinstance(item, Delivery):
                        await _settle_after(handler, item)
                    else:
                        await _call(handler, item)
        except StreamsinkError as exc:
            # A subscription that failed ends the worker: the others stop gracefully, and run()
            # raises this error itself rather than inside an exception group.
            self._failures.append(exc)
            self.stop()


async def _call(handler: EventHandler, event: Event) -> None:
    try:
        await handler(event)
    except Exception:
        log.exception("streamsink worker: handler %r failed on %r", handler, event)


async def _settle_after(handler: EventHandler, delivery: Delivery) -> None:
    if delivery.event is None:
        await delivery.term(f"undecodable: {delivery.decode_error}")
        return
    try:
        await handler(delivery.event)
    except Exception:
        log.exception(
            "streamsink worker: handler %r failed on %s %s (delivery %d): nacked",
            handler,
            delivery.stream_id,
            delivery.entry_id,
            delivery.delivery_count,
        )
        await delivery.nack()
    else:
        await delivery.ack()
