"""The operations extension of the inspection SPI: what an operator tool lists and changes
(:class:`OperableBackend`, declared by ``Capabilities.operations``).

It lists streams, a stream's groups, a group's consumers and pending entries, and makes the two
changes an operator needs besides appending and destroying: delete consumers that hold nothing
and were idle for long enough, and trim a stream. The core never calls it; ``streamsink``'s
operator commands (``streams``, ``groups``, ``pending``, ``consumers``, ``trim``, ``dlq``) do.
"""

from __future__ import annotations

from typing import Literal, Protocol

import attrs

from .._exceptions import ConfigurationError
from ._inspect import InspectingBackend

__all__ = ["ConsumerInfo", "GroupInfo", "OperableBackend", "PendingInfo", "TrimBound"]


@attrs.frozen
class TrimBound:
    """How far :meth:`OperableBackend.trim_stream` trims. Build with the class methods:

    - ``maxlen(n)``: keep the newest ``n`` entries;
    - ``minid(entry_id)``: remove the entries with an id before ``entry_id`` (as Redis's
      ``XTRIM MINID``; the entry itself stays);
    - ``through(entry_id)``: remove the entries up to and including ``entry_id`` (what an
      operator removes after handling them, without knowing the backend's id arithmetic).

    Ids are checked by the backend, as ids of its own.
    """

    kind: Literal["maxlen", "minid", "through"]
    count: int | None = None
    entry_id: str | None = None

    @classmethod
    def maxlen(cls, count: int) -> TrimBound:
        """:raises ConfigurationError: not an integer of 0 or more."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ConfigurationError(f"TrimBound.maxlen needs an integer >= 0, got {count!r}")
        return cls("maxlen", count=count)

    @classmethod
    def minid(cls, entry_id: str) -> TrimBound:
        """:raises ConfigurationError: not a non-empty string."""
        return cls("minid", entry_id=_entry_id("minid", entry_id))

    @classmethod
    def through(cls, entry_id: str) -> TrimBound:
        """:raises ConfigurationError: not a non-empty string."""
        return cls("through", entry_id=_entry_id("through", entry_id))

    def __str__(self) -> str:
        return f"{self.kind}({self.count if self.kind == 'maxlen' else self.entry_id})"


def _entry_id(kind: str, entry_id: object) -> str:
    if not isinstance(entry_id, str) or not entry_id:
        raise ConfigurationError(f"TrimBound.{kind} needs a non-empty entry id, got {entry_id!r}")
    return entry_id


@attrs.frozen(kw_only=True)
class GroupInfo:
    """One consumer group of a stream, from :meth:`OperableBackend.list_groups`.

    - ``name``: the group.
    - ``consumers``: how many consumers it has.
    - ``pending``: entries delivered to it and not acknowledged yet (every consumer's).
    - ``last_delivered_id``: the last entry delivered to the group, None before the first (or
      when the group was created at an id that is no entry).
    - ``lag``: entries the stream holds that the group was not delivered yet; None when the
      backend cannot tell (Redis after an ``XDEL``).
    - ``idle``: seconds since its most recently active consumer last read or claimed; None
      when it has no consumers.
    """

    name: str
    consumers: int
    pending: int
    last_delivered_id: str | None
    lag: int | None
    idle: float | None


@attrs.frozen(kw_only=True)
class ConsumerInfo:
    """One consumer of a group, from :meth:`OperableBackend.list_consumers`: ``pending`` entries
    it holds, and ``idle`` seconds since it last read or claimed (as Redis counts it: an
    acknowledgement does not reset it)."""

    name: str
    pending: int
    idle: float


@attrs.frozen(kw_only=True)
class PendingInfo:
    """One pending entry of a group, from :meth:`OperableBackend.list_pending`: its id, the
    ``consumer`` holding it, ``idle`` seconds since its last delivery (``inf`` when it was
    nacked and is due for redelivery now), and ``deliveries`` so far."""

    entry_id: str
    consumer: str
    idle: float
    deliveries: int


class OperableBackend(InspectingBackend, Protocol):
    """A backend an operator can list and tidy (declared by ``Capabilities.operations``, which
    needs ``Capabilities.stream_info``). Nothing here delivers, claims or acknowledges an entry:
    listing leaves idle times and delivery counts as they were."""

    async def list_streams(self) -> list[str]:
        """The ids of the streams that exist now (dead-letter streams included), sorted.

        :raises BackendUnavailableError: the broker cannot be reached.
        """
        ...

    async def list_groups(self, stream_id: str) -> list[GroupInfo] | None:
        """The groups of ``stream_id``, sorted by name; None when the stream does not exist.

        :raises ConfigurationError: an invalid stream id.
        """
        ...

    async def list_consumers(self, stream_id: str, group: str) -> list[ConsumerInfo] | None:
        """The consumers of ``group``, sorted by name; None when the stream or the group does
        not exist.

        :raises ConfigurationError: an invalid stream id or group name.
        """
        ...

    async def list_pending(
        self,
        stream_id: str,
        group: str,
        *,
        after: str | None = None,
        count: int = 100,
        consumer: str | None = None,
    ) -> list[PendingInfo] | None:
        """Up to ``count`` pending entries of ``group`` with ids after ``after`` (from the first
        when None), in id order, only ``consumer``'s when given; None when the stream or the
        group does not exist. Page by passing the last id returned as ``after``.

        :raises ConfigurationError: an invalid stream id, group or consumer name, a ``count``
            below 1, or an ``after`` that is not an id of this backend.
        """
        ...

    async def delete_idle_consumer(
        self, stream_id: str, group: str, consumer: str, *, min_idle: float
    ) -> bool:
        """Delete ``consumer`` from ``group`` if, at that moment (atomically), it holds no pending
        entry and has been idle for at least ``min_idle`` seconds; True when it was deleted.
        A consumer holding entries is never deleted (its entries would lose their owner).
        False when the stream, group or consumer does not exist.

        :raises ConfigurationError: an invalid name, or a negative ``min_idle``.
        """
        ...

    async def trim_stream(self, stream_id: str, bound: TrimBound) -> int:
        """Remove the oldest entries of ``stream_id`` down to ``bound``, exactly (not
        approximately), and return how many were removed (0 for a missing stream). Groups and
        readers behind the cut see the removed entries as a gap, as after trimming on append.

        :raises ConfigurationError: an invalid stream id, or an id in ``bound`` that is not an
            id of this backend.
        """
        ...
