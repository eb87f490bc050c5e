"""Shared reads on a :class:`MemoryBroker` (the SPI's :class:`~streamsink.backend.SharedReads`):
many cursors read in one call, one wait for all their streams."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, final

import anyio
import attrs

from streamsink import BackendClosedError, ConfigurationError
from streamsink.backend import (
    Record,
    RecordBatch,
    SharedCursor,
    StartPosition,
    StreamBatch,
    StreamDestroyedError,
)
from streamsink.lowlevel import Waiter, checkpoint, new_waiter

from ._keys import format_key, start_key
from ._stream import Stream

if TYPE_CHECKING:
    from ._broker import MemoryBroker
    from ._handles import Handles

__all__ = ["MemoryCursor", "MemorySharedReads"]


@final
@attrs.frozen(slots=True)
class MemoryCursor:
    """A reader's place: the key it stands after (``after`` as text), its position (entries of
    the stream behind it; None: not known) and the stream incarnation it reads."""

    stream_id: str
    after: str
    key: int
    pos: int | None
    stream: Stream | None = attrs.field(eq=False, repr=False)


@final
class MemorySharedReads:
    """Reads of many cursors at once on one broker; one lane (there is no connection to spare).

    A blocked read waits on one waiter registered for every stream it reads; an append to any
    of them, a destroy, :meth:`interrupt` or the backend's close wakes it.
    """

    def __init__(self, broker: MemoryBroker, handles: Handles) -> None:
        self._broker = broker
        self._handles = handles
        self._waiter: Waiter | None = None  # the blocked lane read's
        self._interrupted = False
        self._closed = False
        handles.add(self)

    @property
    def lanes(self) -> int:
        return 1

    def lane(self, stream_id: str, loads: Sequence[int]) -> int:
        return 0

    def _check(self) -> None:
        if self._closed:
            raise BackendClosedError("memory shared reads are closed")

    async def resolve(self, stream_id: str, start: StartPosition) -> MemoryCursor:
        """A cursor at ``start``, resolved as :meth:`MemoryBackend.open_reader` resolves it."""
        if not isinstance(start, StartPosition):
            raise ConfigurationError(f"start must be a StartPosition, got {start!r}")
        self._check()
        await checkpoint()
        self._check()
        if self._broker._deadlines:
            self._broker.expire_idle()
        stream = self._broker._streams.get(stream_id)
        key, pos = (start_key(start, 0), 0) if stream is None else stream.start_position(start)
        return MemoryCursor(stream_id, format_key(key), key, pos, stream)

    async def read(
        self, cursors: Sequence[SharedCursor], count: int, block: float, *, lane: int | None
    ) -> list[StreamBatch]:
        """Every cursor's batch; waits up to ``block`` seconds for one to have something.

        :raises ConfigurationError: a cursor this backend did not make.
        """
        if type(count) is not int or count < 1:
            raise ConfigurationError(f"count must be a positive integer, got {count!r}")
        if lane is not None:
            self._interrupted = False  # an interrupt from now on ends this read
        self._check()
        await checkpoint()
        deadline: float | None = None
        while True:
            self._check()
            if self._broker._deadlines:
                self._broker.expire_idle()
            batches = [self._read_one(cursor, count) for cursor in cursors]
            if any(b.records or b.error or type(b.records) is RecordBatch for b in batches):
                return batches
            if block <= 0 or lane is None or self._interrupted:
                return batches
            cursors = [batch.cursor for batch in batches]  # what they learned (incarnations)
            if deadline is None:
                deadline = anyio.current_time() + block
            if not await self._wait(cursors, deadline):
                return batches  # timed out

    async def _wait(self, cursors: Sequence[SharedCursor], deadline: float) -> bool:
        """Wait for an append to (or destroy of) one of the cursors' streams, an interrupt or a
        close, until ``deadline``; True when woken."""
        waiter = self._waiter = new_waiter()
        registry = self._broker._waiters
        stream_ids = {cursor.stream_id for cursor in cursors}
        for stream_id in stream_ids:
            waiters = registry.get(stream_id)
            if waiters is None:
                waiters = registry[stream_id] = set()
            waiters.add(waiter)
        try:
            await waiter.wait(deadline)
        finally:
            self._waiter = None
            for stream_id in stream_ids:
                waiters = registry.get(stream_id)
                if waiters is not None:
                    waiters.discard(waiter)
                    if not waiters:
                        del registry[stream_id]
        return waiter.is_set()

    def _read_one(self, cursor: SharedCursor, count: int) -> StreamBatch:
        if type(cursor) is not MemoryCursor:
            raise ConfigurationError(f"not a cursor of the memory backend: {cursor!r}")
        stream, pos = cursor.stream, cursor.pos
        if stream is not None:
            if stream.destroyed:
                error = StreamDestroyedError(f"stream {cursor.stream_id!r} was destroyed")
                return StreamBatch([], cursor, error)
            if stream.lost:
                stream = None
        if stream is None:
            # Not there when the cursor was made, or flushed since: a new incarnation, all new.
            stream, pos = self._broker._streams.get(cursor.stream_id), 0
            if stream is None:
                return StreamBatch([], _moved(cursor, None, cursor.key, pos))
        records: Sequence[Record]
        records, key, pos = stream.read_from(cursor.key, pos, count)
        if key == cursor.key and pos == cursor.pos and stream is cursor.stream:
            return StreamBatch(records, cursor)
        return StreamBatch(records, _moved(cursor, stream, key, pos))

    async def interrupt(self, lane: int) -> None:
        """End the blocked lane read now (or the next one, if it has not started waiting)."""
        self._interrupted = True
        if self._waiter is not None:
            self._waiter.set()

    async def aclose(self) -> None:
        """Wake a blocked read (it raises BackendClosedError). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._handles.discard(self)
        if self._waiter is not None:
            self._waiter.set()


def _moved(cursor: MemoryCursor, stream: Stream | None, key: int, pos: int | None) -> MemoryCursor:
    after = cursor.after if key == cursor.key else format_key(key)
    return MemoryCursor(cursor.stream_id, after, key, pos, stream)
