"""The three protocols a backend implements: :class:`Backend`, :class:`GroupConsumer` and
:class:`StreamReader`, and the factory a plugin registers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from ._capabilities import Capabilities
from ._records import Entry, Record
from ._start import StartPosition
from ._url import BackendURL

__all__ = ["Backend", "BackendFactory", "GroupConsumer", "StreamReader"]


class GroupConsumer(Protocol):
    """One named consumer in a consumer group on one stream.

    Entries read through it stay pending (owned by this consumer, with a delivery count and an
    idle time) until acked. Methods raise :class:`GroupLostError` when the group vanished.
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
        this consumer."""
        ...

    async def read_own_pending(self, after: str | None, count: int) -> Sequence[Record]:
        """Up to ``count`` of this consumer's own pending entries with ids greater than ``after``
        (all when None), in id order, without blocking; each counts as a new delivery (its
        delivery count grows, as a Redis history read does). Entries whose data is gone (trimmed)
        are removed from the pending list and not returned."""
        ...

    async def claim_idle(self, min_idle: float, count: int) -> Sequence[Record]:
        """Move up to ``count`` pending entries of the group idle for at least ``min_idle``
        seconds (any consumer's, including this one's) to this consumer and return them with
        their delivery counts incremented. Successive calls page through the pending list, and
        a call may scan only part of it (as XAUTOCLAIM does), so an empty answer does not prove
        that nothing further on is idle. An entry whose data is gone (trimmed) is dropped from
        the pending list and not returned."""
        ...

    async def ack(self, entry_ids: Sequence[str]) -> None:
        """Acknowledge entries (idempotent: acking an unknown or acked id is not an error)."""
        ...

    async def nack(self, entry_ids: Sequence[str]) -> None:
        """Make pending entries claimable at once, without waiting for the idle period."""
        ...

    async def touch(self, entry_ids: Sequence[str]) -> None:
        """Reset the idle time of this consumer's pending entries (a handler is still on them)."""
        ...

    async def aclose(self) -> None:
        """Release the consumer's resources; delete the consumer from the group when it holds
        no pending entries. Idempotent; pending entries stay for others to claim."""
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
        self, stream_id: str, group: str, consumer: str, start: StartPosition
    ) -> GroupConsumer:
        """Join (creating if needed) ``group`` on ``stream_id`` as ``consumer``."""
        ...

    async def open_reader(self, stream_id: str, start: StartPosition) -> StreamReader:
        """Open a fan-out reader on ``stream_id``."""
        ...

    async def destroy(self, stream_id: str) -> None:
        """Delete the stream with its entries and groups; destroying a missing stream is fine."""
        ...

    async def aclose(self) -> None:
        """Close the connection. Idempotent. Caller-owned clients are left open."""
        ...


BackendFactory = Callable[[BackendURL], Awaitable[Backend]]
"""What a plugin registers for a scheme: an async callable turning a parsed URL into a Backend."""
