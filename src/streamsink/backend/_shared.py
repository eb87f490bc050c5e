"""Shared reads (optional, declared by ``Capabilities.shared_reads``): one read of many streams at
once, so that the core's fan-out hub (:mod:`streamsink._sharing`) serves every fan-out reader of
a process with a few blocking reads instead of one per reader.

The core keeps the readers, their cursors and buffers; a backend only reads. Cursors are values
the backend makes (:meth:`SharedReads.resolve`) and returns (:class:`StreamBatch`): the core never
looks inside them beyond :attr:`SharedCursor.stream_id` and :attr:`SharedCursor.after`, which it
compares for equality only. A backend without shared reads keeps working: the core then opens one
:class:`~streamsink.backend.StreamReader` per fan-out subscription.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from .._exceptions import StreamsinkError
from ._protocols import Backend
from ._records import Record
from ._start import StartPosition

__all__ = ["SharedCursor", "SharedReadBackend", "SharedReads", "StreamBatch"]


class SharedCursor(Protocol):
    """Where a fan-out reader stands in one stream: an immutable value of the backend's.

    Two cursors of one stream with equal ``after`` stand at the same place: the core then reads
    them as one (it merges their readers). Whatever else a cursor carries (the reader's position
    for gap reports, when it last caught up) is the backend's business.
    """

    @property
    def stream_id(self) -> str:
        """The stream."""
        ...

    @property
    def after(self) -> str:
        """The id of the last entry read through this cursor, or the point its start resolved
        to: opaque text, compared for equality only."""
        ...


class StreamBatch(NamedTuple):
    """What one read of :meth:`SharedReads.read` gives for one of its cursors, in its order.

    - ``records``: the entries after the cursor, oldest first, up to ``count``. A read of one
      cursor gives fewer only at the end of the stream or at the backend's own cap on a read
      (the core's catch-up takes fewer as the end); a cursor read along with an earlier cursor
      of its stream may get fewer (Redis reads the stream once, from the earliest). A
      :class:`~streamsink.backend.RecordBatch` with a ``gap`` when entries after the cursor
      were trimmed before this read got to them, exactly as :meth:`StreamReader.read` reports
      them (possibly empty).
    - ``cursor``: where the next read of this stream starts (the given cursor when nothing moved).
    - ``error``: the stream can no longer be read through this cursor
      (:class:`~streamsink.backend.StreamDestroyedError`); ``records`` is then empty.
    """

    records: Sequence[Record]
    cursor: SharedCursor
    error: StreamsinkError | None = None


class SharedReads(Protocol):
    """One backend's multi-stream reads, opened by :meth:`SharedReadBackend.open_shared_reads`.

    Reads run in *lanes*: each lane has at most one read in flight (the core guarantees it), and
    lanes read concurrently (on Redis a lane is one read connection, so ``lanes`` bounds the read
    connections). Which lane reads a stream is the backend's choice (:meth:`lane`), so that a
    backend whose multi-stream reads are limited (Redis Cluster: one slot per command) can group
    streams as it must.

    Every method raises :class:`~streamsink.BackendClosedError` after the backend (or this
    object) closed, and :class:`~streamsink.BackendUnavailableError` when the broker cannot be
    reached (the core retries). Every blocking call is cancellable at once.
    """

    @property
    def lanes(self) -> int:
        """How many lanes (concurrent reads) there are: at least 1."""
        ...

    def lane(self, stream_id: str, loads: Sequence[int]) -> int:
        """The lane that reads ``stream_id`` from now on, given how many streams each lane reads
        now (``loads[i]``, ``len(loads) == lanes``). Called once when the core starts reading a
        stream; the core keeps every cursor of a stream in that lane."""
        ...

    async def resolve(self, stream_id: str, start: StartPosition) -> SharedCursor:
        """A cursor at ``start``, resolved now (``newest``: after the last entry appended so far),
        so no entry appended after this call is missed. Uses no connection of its own.

        :raises ConfigurationError: an invalid stream id or start.
        """
        ...

    async def read(
        self, cursors: Sequence[SharedCursor], count: int, block: float, *, lane: int | None
    ) -> list[StreamBatch]:
        """Read every cursor at once: one :class:`StreamBatch` per cursor, in their order, each
        with up to ``count`` records. Waits up to ``block`` seconds (``block <= 0``: not at all)
        until at least one cursor has something (an entry, a gap or an error), and returns early,
        with nothing, when :meth:`interrupt` is called for ``lane``.

        ``lane`` is the lane the cursors belong to (several cursors may be on one stream).
        ``lane=None`` is a reader catching up on its own: ``block`` is then 0 and the read uses no
        lane's connection (on Redis: the backend's command connection).

        A read cancelled loses nothing: the cursors given stay valid.
        """
        ...

    async def interrupt(self, lane: int) -> None:
        """Make the read in flight on ``lane`` (if any) return now, without error, so that the
        core can read again with another set of cursors (a reader joined). Promptly: within a
        round trip to the broker. Harmless when nothing is in flight."""
        ...

    async def aclose(self) -> None:
        """Release what the reads hold (connections); a read in flight raises
        :class:`~streamsink.BackendClosedError`. Idempotent."""
        ...


class SharedReadBackend(Backend, Protocol):
    """A backend that declares ``Capabilities.shared_reads``."""

    async def open_shared_reads(self) -> SharedReads:
        """A new :class:`SharedReads` on this backend; the core opens one while a process has
        fan-out readers on the backend and closes it when the last one leaves. The backend's
        ``aclose()`` closes it too; its ``destroy(stream_id)`` makes reads of that stream return
        ``StreamDestroyedError`` (a blocked read at once)."""
        ...
