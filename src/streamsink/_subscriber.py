"""The consuming side: ``StreamSubscriber`` opens subscriptions on a backend."""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Callable
from typing import Any, Protocol

import attrs
from anyio.abc import AsyncResource

from ._consuming import Delivery, Subscription, claim_interval_of, resolve_settings
from ._deadletter import DeadLetter
from ._drain import DrainOptions, drain_decoder
from ._drain_subscription import DrainSubscription
from ._events import StreamEvent
from ._exceptions import ConfigurationError, StreamsinkError, SubscriptionError
from ._options import SubscriberOptions
from ._runtime_statistics import SubscriptionTally
from ._streams import dead_letter_stream_id, validate_stream_id
from .backend import Backend, StartPosition

__all__ = ["StreamSubscriber", "Subscriber"]

log = logging.getLogger("streamsink")


class Subscriber(Protocol):
    """What consumes a stream: ``subscribe`` (auto-ack events) and ``subscribe_manual``
    (:class:`Delivery` objects to settle), each used as ``async with``."""

    def subscribe(
        self, stream_id: str, *, start: StartPosition | None = None
    ) -> Subscription[StreamEvent]: ...
    def subscribe_manual(
        self, stream_id: str, *, start: StartPosition | None = None
    ) -> Subscription[Delivery]: ...
    async def aclose(self) -> None: ...


class _Live:
    """The subscriptions a subscriber has open and the errors they report: what each of them
    talks to (a :class:`~streamsink._consuming.SubscriptionOwner`)."""

    __slots__ = ("dropped_errors", "holder", "on_error", "subscriber", "subscriptions", "tally")

    def __init__(
        self,
        subscriber: StreamSubscriber,
        on_error: Callable[[StreamsinkError], object] | None,
    ) -> None:
        self.subscriber = subscriber
        self.on_error = on_error
        self.subscriptions: set[Subscription[Any]] = set()
        # Set by the RuntimeStreams that made the subscriber: a set that holds it while it has
        # subscriptions open (so the runtime's aclose() can stop them) and only then.
        self.holder: set[StreamSubscriber] | None = None
        # Set by the same runtime: where a closing subscription leaves its counters.
        self.tally: SubscriptionTally | None = None
        self.dropped_errors = 0

    def opened(self, subscription: Subscription[Any]) -> None:
        self.subscriptions.add(subscription)
        if self.holder is not None:
            self.holder.add(self.subscriber)

    def closed(self, subscription: Subscription[Any]) -> None:
        if subscription in self.subscriptions and self.tally is not None:
            self.tally.retire(subscription.group, subscription.statistics())
        self.subscriptions.discard(subscription)
        if not self.subscriptions and self.holder is not None:
            self.holder.discard(self.subscriber)

    def report(self, error: StreamsinkError) -> None:
        callback = self.on_error
        if callback is None:
            self.dropped_errors += 1
            log.warning("%s", error)
            return
        try:
            callback(error)
        except Exception:
            self.dropped_errors += 1
            log.exception("on_error callback failed on: %s", error)


class StreamSubscriber(AsyncResource):
    """Opens group or fan-out subscriptions on one backend, with one set of options.

    The subscriber does not own the backend. ``aclose`` stops every subscription it opened.
    ``clock`` (monotonic seconds, a ``Callable[[], float]``) times its subscriptions' claim
    scans and leases; the default is the event loop's (:func:`streamsink.lowlevel.clock`).
    Tests inject a fake one, with the memory backend's broker on the same clock.
    """

    def __init__(
        self,
        backend: Backend,
        options: SubscriberOptions | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._backend = backend
        self._options = options if options is not None else SubscriberOptions()
        self._live = _Live(self, self._options.on_error)
        self._clock = clock
        self._closed = False
        self._claim_interval = claim_interval_of(self._options, backend)

    @property
    def backend(self) -> Backend:
        return self._backend

    @property
    def options(self) -> SubscriberOptions:
        return self._options

    @property
    def dropped_errors(self) -> int:
        """Errors that could not be reported (no ``on_error``, or it raised). Only ever grows."""
        return self._live.dropped_errors

    def subscribe(
        self, stream_id: str, *, start: StartPosition | None = None
    ) -> Subscription[StreamEvent]:
        """Events of ``stream_id``, acknowledged automatically once the application is done with
        each (it asks for the next one or leaves the loop normally).

        Items are what the decoder returns: :class:`StreamEvent` with the default decoder (typed
        so); a custom ``decoder`` yields its own event type.

        :raises ConfigurationError: a stream id pulse would refuse.
        :raises SubscriptionError: the subscriber is closed.
        """
        return self._open(stream_id, start, manual=False)

    def subscribe_manual(
        self, stream_id: str, *, start: StartPosition | None = None
    ) -> Subscription[Delivery]:
        """:class:`Delivery` objects of ``stream_id``, each to ``ack``/``nack``/``term``.
        Undecodable entries arrive too, with ``decode_error`` set and ``event`` None."""
        return self._open(stream_id, start, manual=True)

    def subscribe_dead_letters(
        self, stream_id: str, *, start: StartPosition | None = None
    ) -> Subscription[DeadLetter]:
        """The dead letters of ``stream_id`` (read from ``dead_letter_stream(stream_id)``, by
        default ``<stream id>:dlq``) as :class:`DeadLetter` objects, each with its ``letter_id``;
        in the subscriber's group (acknowledged as in :meth:`subscribe`) or as a fan-out reader.
        ``start`` defaults to the oldest letter. Entries of that stream that are not dead letters
        are reported as undecodable and skipped; a dead letter is never dead-lettered again.

        :raises ConfigurationError: the subscriber has no dead-letter stream
            (``dead_letter_stream=None``), or a stream id pulse would refuse.
        """
        make = self._options.dead_letter_stream
        if make is None:
            raise ConfigurationError(
                "subscribe_dead_letters() needs a dead-letter stream; this subscriber has "
                "dead_letter_stream=None"
            )
        validate_stream_id(stream_id)
        letters = dead_letter_stream_id(make, stream_id)
        return self._open(letters, start or StartPosition.oldest(), manual=False, letters=True)

    def subscribe_drain(
        self, drain: DrainOptions | None = None, *, start: StartPosition | None = None
    ) -> DrainSubscription[StreamEvent]:
        """Events of every stream a sink with ``SinkOptions.drain=drain`` copies to the drain
        (every session), through this subscriber's group, acknowledged as in :meth:`subscribe`.
        Each event keeps its own ``stream_id``, ``entry_id`` and ``topic``; events of one stream
        come in their order. ``drain`` must name the sinks' shards (default: ``DrainOptions()``);
        ``start`` defaults to the oldest entry, so a drain group made after the sinks started
        still gets everything the shards hold. Undecodable entries and entries past
        ``max_deliveries`` go to the shard's dead-letter stream (``drain/<n>:dlq`` by default;
        :func:`streamsink.decode_drain_copy` unpacks a letter's payload). See docs/drain.md.

        :raises ConfigurationError: ``drain`` is not a DrainOptions, or a bad ``start``.
        :raises SubscriptionError: the subscriber is closed.
        """
        return self._open_drain(drain, start, manual=False)

    def subscribe_drain_manual(
        self, drain: DrainOptions | None = None, *, start: StartPosition | None = None
    ) -> DrainSubscription[Delivery]:
        """:meth:`subscribe_drain` in manual mode: :class:`Delivery` objects to settle. A
        delivery's ``stream_id``/``entry_id`` are the shard's; its ``event``'s are the origin's."""
        return self._open_drain(drain, start, manual=True)

    def _open_drain(
        self, drain: DrainOptions | None, start: StartPosition | None, *, manual: bool
    ) -> DrainSubscription[Any]:
        if drain is None:
            drain = DrainOptions()
        elif not isinstance(drain, DrainOptions):
            raise ConfigurationError(
                f"subscribe_drain(drain={drain!r}) is invalid: expected a DrainOptions (the "
                "sinks' SinkOptions.drain), or None for DrainOptions()"
            )
        options = attrs.evolve(self._options, decoder=drain_decoder(self._options.decoder))
        consumer_name = self._consumer_name()  # one name on every shard
        shards = [
            self._open(
                stream_id,
                start or StartPosition.oldest(),
                manual=True,
                options=options,
                consumer_name=consumer_name,
            )
            for stream_id in drain.stream_ids()
        ]
        return DrainSubscription(
            shards,
            manual=manual,
            renew_every=options.ack_grace_period / 3,
            report=self._live.report,
        )

    def _open(
        self,
        stream_id: str,
        start: StartPosition | None,
        *,
        manual: bool,
        letters: bool = False,
        options: SubscriberOptions | None = None,
        consumer_name: str | None = None,
    ) -> Subscription[Any]:
        if self._closed:
            raise SubscriptionError("subscribe() on a closed subscriber")
        validate_stream_id(stream_id)
        if start is not None and not isinstance(start, StartPosition):
            raise ConfigurationError(
                f"start={start!r} is invalid: expected StartPosition.newest(), .oldest(), "
                ".after(entry_id) or .at(datetime)"
            )
        options = options or self._options
        settings = resolve_settings(
            options,
            self._backend,
            stream_id,
            consumer_name=consumer_name or self._consumer_name(),
            claim_interval=self._claim_interval,
            manual=manual,
            letters=letters,
        )
        return Subscription(
            self._live,
            self._backend,
            options,
            settings,
            start or options.start,
            clock=self._clock,
        )

    def _consumer_name(self) -> str:
        if self._options.consumer_name:
            return self._options.consumer_name
        # Unique per subscription, readable in XINFO CONSUMERS: host, process, random suffix.
        return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"

    def _keep_alive_in(
        self, holder: set[StreamSubscriber], tally: SubscriptionTally | None = None
    ) -> None:
        """Be in ``holder`` (a runtime's set) while a subscription is open, and only then; leave
        the counters of closed subscriptions in ``tally``."""
        self._live.holder = holder
        self._live.tally = tally

    def _open_subscriptions(self) -> list[Subscription[Any]]:
        return list(self._live.subscriptions)

    async def aclose(self) -> None:
        """Stop every live subscription (their iterations end) and refuse new ones. Idempotent."""
        self._closed = True
        for subscription in list(self._live.subscriptions):
            await subscription.aclose()
