"""The protocols a backend implements: :class:`Backend`, :class:`GroupConsumer` and
:class:`StreamReader`, the optional :class:`TimedBackend`, :class:`TerminatingGroupConsumer` and
:class:`SummarizingGroupConsumer` (declared by :class:`Capabilities`), and the factory a plugin registers.

Entry ids are opaque text to the core: it compares them only for equality, and passes them back
(``after``, acks) as it got them. A backend orders them by its own rule. Deliveries are named by
:class:`DeliveryKey`: an entry id with the delivery count of the record that delivered it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Final, Protocol

from ._capabilities import Capabilities
from ._records import DeliveryKey, Entry, PendingSummary, Record
from ._start import StartPosition
from ._url import BackendURL

__all__ = [
    "DEFAULT_ACK_GRACE_PERIOD",
    "Backend",
    "BackendFactory",
    "GroupConsumer",
    "StreamReader",
    "SummarizingGroupConsumer",
    "TerminatingGroupConsumer",
    "TimedBackend",
]

DEFAULT_ACK_GRACE_PERIOD: Final = 20.0
"""The grace period (seconds) of a group consumer opened without one: the core's default
``SubscriberOptions.ack_grace_period``."""


class GroupConsumer(Protocol):
    """One named consumer in a consumer group on one stream.

    Entries read through it stay pending (owned by this consumer, with a delivery count and an
    idle time) until acked. Each read, claim or redelivery of an entry is a new *delivery* of it,
    told apart by the record's ``delivery_count``; a delivery is *superseded* once a later one of
    the same entry exists (the entry was claimed or redelivered, to this consumer or another,
    while an earlier delivery was still being handled).

    Settling names entries or deliveries:

    - ``ack`` (and ``term``) name entries: they finish the entry, whichever of its deliveries
      the caller handled. Acking on behalf of a superseded delivery may still ack the entry
      (the newer delivery's handler may then run anyway: delivery is at least once), or be
      ignored; either is correct.
    - ``nack`` and ``touch`` name deliveries, by :class:`DeliveryKey` (entry id and delivery
      count): they act only on that delivery while it is the entry's latest one to this
      consumer. For a superseded delivery they do nothing: the newer delivery, this consumer's
      or another's, keeps its owner and its idle time (or, where the broker redelivers by
      itself, its redelivery deadline), and no extra delivery is caused. A plain ``str`` (a
      caller that knows no count) names the entry's latest delivery to this consumer.

    A backend may settle each id on its own (a broker whose acknowledgements are per message),
    or all in one round trip; ids this consumer does not hold are ignored. Methods raise
    :class:`GroupLostError` when the group vanished.
    """

    @property
    def consumer(self) -> str:
        """This consumer's name within the group."""
        ...

    async def ensure_group(self, start: StartPosition) -> None:
        """Create the group at ``start`` if it does not exist (an existing group keeps its
        position), creating the stream if needed."""
        ...

    async def read_new(self, count: int, block: float) -> Sequence[Record]:
        """Up to ``count`` entries never delivered to the group, waiting up to ``block`` seconds
        for the first (``block <= 0``: do not wait); empty on timeout. They become pending for
        this consumer. Where the backend redelivers by itself (``Capabilities.claims`` False),
        entries due for redelivery come this way too, with their delivery counts raised.

        Cancelling a read loses nothing: an entry the broker handed to a cancelled read is
        returned by a later read or stays pending, to be redelivered after the grace period."""
        ...

    async def read_own_pending(self, after: str | None, count: int) -> Sequence[Record]:
        """(``Capabilities.own_pending``) Up to ``count`` of this consumer's own pending entries
        with ids after ``after`` (all when None), in id order, without blocking; each counts as
        a new delivery (its delivery count grows). Entries whose data is gone (trimmed) are
        removed from the pending list and not returned."""
        ...

    async def claim_idle(self, min_idle: float, count: int) -> Sequence[Record]:
        """(``Capabilities.claims``) Move up to ``count`` pending entries of the group idle for
        at least ``min_idle`` seconds (any consumer's, including this one's; the core passes
        the grace period the consumer was opened with) to this consumer and return them with
        their delivery counts incremented. Successive calls page through the pending entries,
        and a call may look at only part of them, so an empty answer does not prove that
        nothing further on is idle. An entry whose data is gone (trimmed) is dropped from the
        pending list and not returned."""
        ...

    async def ack(self, entry_ids: Sequence[str]) -> None:
        """Acknowledge entries: they are done and never delivered again (idempotent: acking an
        unknown or acked id is not an error), whichever of their deliveries the caller
        handled."""
        ...

    async def nack(self, keys: Sequence[DeliveryKey]) -> None:
        """(``Capabilities.redelivery``) Give deliveries back: the entry of each delivery that is
        still the latest one to this consumer is delivered again (to this or another consumer)
        at once, without waiting for the grace period. A key of a superseded delivery, or of
        an entry this consumer does not hold, changes nothing."""
        ...

    async def touch(self, keys: Sequence[DeliveryKey]) -> None:
        """(``Capabilities.redelivery``) Restart the grace period of deliveries that are still
        the latest ones of their entries to this consumer (a handler is still on them). A key
        of a superseded delivery changes nothing: an entry another consumer took meanwhile
        stays that consumer's, and a newer delivery to this consumer keeps its idle time."""
        ...

    async def aclose(self) -> None:
        """Release the consumer's resources; delete the consumer from the group when it holds
        no pending entries. Idempotent; pending entries stay for redelivery."""
        ...


class TerminatingGroupConsumer(GroupConsumer, Protocol):
    """A group consumer with a native terminate (declared by ``Capabilities.term``)."""

    async def term(self, entry_ids: Sequence[str]) -> None:
        """End entries for good, as failures: they are never delivered again (as after
        ``ack``, whichever delivery of them the caller handled), and the broker may record that
        they were terminated. The core calls it, instead of ``ack``, once it has written an
        entry's dead letter. Idempotent."""
        ...


class SummarizingGroupConsumer(GroupConsumer, Protocol):
    """A group consumer that can tell cheaply what its group holds pending (declared by
    ``Capabilities.pending_summary``). The core then scans for idle entries (``claim_idle``)
    only when something pending can be idle past the grace period, once per group and process,
    instead of every claim interval in every subscription."""

    async def pending_summary(self) -> PendingSummary:
        """How many entries the whole group (every consumer, not only this one) holds pending,
        and how long the longest-idle of them has been idle, without changing anything (no
        delivery, no idle time reset, no consumer created). Cheap when nothing is pending: the
        core calls it about once per grace period per group even when the stream is idle."""
        ...


class StreamReader(Protocol):
    """A fan-out reader: sees every entry after its start, acks nothing, leaves no state."""

    async def read(self, count: int, block: float) -> Sequence[Record]:
        """Up to ``count`` entries after the reader's cursor, waiting up to ``block`` seconds for
        the first (``block <= 0``: do not wait); empty on timeout. The start position is
        resolved when the reader is opened, so nothing appended after opening is missed."""
        ...

    async def aclose(self) -> None:
        """Release the reader. Idempotent."""
        ...


class Backend(Protocol):
    """A connection to one broker. Open by :func:`streamsink.open_backend` or a factory."""

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def description(self) -> str:
        """A short, password-free description (scheme and location), for logs and errors."""
        ...

    async def append(self, entries: Sequence[Entry]) -> list[str]:
        """Append entries (possibly to several streams) and return their ids, in order.

        Appends to one stream keep their order. Each stream is trimmed to the backend's
        configured approximate maximum length.
        """
        ...

    async def open_group_consumer(
        self,
        stream_id: str,
        group: str,
        consumer: str,
        start: StartPosition,
        *,
        ack_grace_period: float = DEFAULT_ACK_GRACE_PERIOD,
    ) -> GroupConsumer:
        """Join (creating if needed) ``group`` on ``stream_id`` as ``consumer``.

        ``ack_grace_period`` (seconds) is how long a delivery may stay unacknowledged before
        its entry is redelivered: the ``min_idle`` of the core's claims, or the redelivery
        delay of a broker that redelivers by itself.
        """
        ...

    async def open_reader(self, stream_id: str, start: StartPosition) -> StreamReader:
        """Open a fan-out reader on ``stream_id``."""
        ...

    async def destroy(self, stream_id: str) -> None:
        """Delete the stream with its entries and groups; destroying a missing stream is fine.

        Handles of this backend on the stream raise ``StreamDestroyedError`` from then on. A
        stream appended to later under the same id is a new stream: its ids may start over (an
        id may repeat one the destroyed stream had), so positions from before do not carry over.
        """
        ...

    async def aclose(self) -> None:
        """Close the connection. Idempotent. Caller-owned clients are left open."""
        ...


class TimedBackend(Backend, Protocol):
    """A backend that can tell when an entry was appended (declared by
    ``Capabilities.entry_times``)."""

    async def entry_time(self, stream_id: str, entry_id: str) -> datetime:
        """The time (timezone-aware) the backend gives entry ``entry_id`` of ``stream_id``: the
        time ``StartPosition.at`` compares with, so ``at(entry_time(id))`` starts at that entry
        (inclusive). Times do not decrease in id order.

        :raises ConfigurationError: ``entry_id`` is not an id of this backend.
        :raises StreamsinkError: the time cannot be known (e.g. the entry is gone, on a backend
            that must look it up).
        """
        ...


BackendFactory = Callable[[BackendURL], Awaitable[Backend]]
"""What a plugin registers for a scheme: an async callable turning a parsed URL into a Backend."""
