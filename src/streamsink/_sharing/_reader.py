"""``SharedReader``: one fan-out subscription's reader on a :class:`~._hub.Hub`, a
:class:`~streamsink.backend.StreamReader` to the consumer engine."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio
from anyio.lowlevel import checkpoint_if_cancelled

from .._exceptions import BackendClosedError, ConfigurationError, StreamsinkError
from ..backend import Gap, Record, RecordBatch, SharedCursor
from ..lowlevel import Waiter, checkpoint, new_waiter
from ._buffer import ReaderBuffer

if TYPE_CHECKING:
    from ._hub import Hub
    from ._lanes import Channel, Lane

__all__ = ["SHARED_MAX_BLOCK", "SharedReader"]

SHARED_MAX_BLOCK = 60.0
"""Seconds a shared fan-out subscription's read waits for entries before it returns empty
(unless ``SubscriberOptions.max_block`` says otherwise): its waits end at once for a close, a
cancellation, a destroyed stream or a failed read, so a periodic return would notice nothing,
and each costs CPU (``python -m benchmarks.fanout_shared``). The shared read itself still returns
every ``block_ms`` (Redis) and is issued again."""


class SharedReader:
    """Reads one stream with the hub's other readers: its own cursor and bounded buffer, filled
    by whichever reader leads the lane's shared read (this one, when nobody else is reading).

    A reader whose buffer is full when a batch comes is *detached*: it keeps its place (the
    cursor before that batch) and, once it has read what it holds, reads from there on its own,
    without waiting and on no lane connection, until a read reaches the end of the stream; then it
    joins the shared read again. The stream keeps the history meanwhile; entries trimmed before it
    got to them come back as a gap, as for any fan-out reader.
    """

    __slots__ = (
        "__weakref__",
        "_closed",
        "_cursor",
        "_error",
        "_failure",
        "_hub",
        "_waiter",
        "buffer",
        "channel",
        "lane",
        "stream_id",
    )

    def __init__(
        self, hub: Hub, stream_id: str, cursor: SharedCursor, bound: int, bound_bytes: int
    ) -> None:
        self._hub = hub
        self.stream_id = stream_id
        self._cursor = cursor  # while detached: where its own reads go on from
        self.buffer = ReaderBuffer(bound, bound_bytes)
        self.channel: Channel | None = None
        self.lane: Lane | None = None
        self._waiter: Waiter | None = None
        self._error: StreamsinkError | None = None  # for good (destroyed, closed)
        self._failure: StreamsinkError | None = None  # once: the shared read failed
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "shared" if self.channel else "detached"
        return f"<SharedReader on {self.stream_id!r} {state}>"

    @property
    def detached(self) -> bool:
        """Catching up on its own (not on a channel)."""
        return self.channel is None and self._error is None and not self._closed

    # -- what the hub calls ---------------------------------------------------------------------

    def joined(self, channel: Channel) -> None:
        self.channel = channel
        self.lane = channel.lane

    def offer(
        self,
        records: Sequence[Record],
        gap: Gap | None,
        nbytes: int,
        decoded: dict[str, Any] | None = None,
    ) -> bool:
        """A batch for this reader (``decoded``: the memo its readers share); False (and
        nothing kept) when its buffer is full."""
        if not self.buffer.offer(records, gap, nbytes, decoded):
            return False
        self.wake()
        return True

    def detach(self, cursor: SharedCursor) -> None:
        """Off the shared read, to go on from ``cursor`` on its own once its buffer is read."""
        self.channel = None
        self._cursor = cursor
        self.wake()

    def fail(self, error: StreamsinkError) -> None:
        """Reading this stream is over (destroyed): reads raise ``error`` once the buffer is read."""
        self.channel = None
        self._error = error
        self.wake()

    def fail_once(self, error: StreamsinkError) -> None:
        """The shared read failed: the current ``read`` raises it (the engine retries)."""
        self._failure = error
        self.wake()

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            waiter.set()

    # -- StreamReader ---------------------------------------------------------------------------

    async def read(self, count: int, block: float) -> Sequence[Record]:
        """Up to ``count`` entries after this reader's cursor, waiting up to ``block`` seconds
        for the first (``block <= 0``: do not wait); as :meth:`StreamReader.read`.

        :raises BackendClosedError: the reader, or the backend, closed.
        :raises StreamDestroyedError: the stream was destroyed (after what was buffered).
        :raises BackendUnavailableError: the shared read failed (retry).
        """
        if type(count) is not int or count < 1:
            raise ConfigurationError(f"count must be a positive integer, got {count!r}")
        # A checkpoint first, as every backend read takes one: a cancelled caller stops here,
        # before it could lead a read or find the backend closed. A read that is going to wait
        # for entries yields there: it only looks for a cancellation here (a pass of the event
        # loop less for every batch a waiting reader is woken for).
        if self.buffer or self.channel is None or not block > 0:
            await checkpoint()
        else:
            await checkpoint_if_cancelled()
        self._check()
        if self.buffer:
            return self.buffer.take(count)
        if self._error is not None:
            raise _fresh(self._error)
        if self.channel is None:
            records = await self._catch_up(count)
            if records or type(records) is RecordBatch or self.channel is None:
                return records
        return await self._wait(count, block)

    async def _catch_up(self, count: int) -> Sequence[Record]:
        """One read of its own from its cursor; at the end of the stream it joins again."""
        (batch,) = await self._hub.shared.read([self._cursor], count, 0, lane=None)
        self._check()
        if batch.error is not None:
            self._error = batch.error
            raise _fresh(batch.error)
        self._cursor = batch.cursor
        if len(batch.records) < count:
            await self._hub.attach(self, batch.cursor)
        return batch.records

    async def _wait(self, count: int, block: float) -> Sequence[Record]:
        lane = self.lane
        assert lane is not None
        hub = self._hub
        deadline = anyio.current_time() + max(block, 0.0)
        lane.waiting[self] = None
        try:
            first = True
            while not self.buffer and self.channel is not None:
                self._check()
                left = deadline - anyio.current_time()
                if left <= 0 and not first:
                    break
                first = False
                if lane.leader is None:
                    lane.leader = self
                    try:
                        await hub.lead(lane, left)
                    finally:
                        lane.leader = None
                elif left > 0:
                    waiter = self._waiter = new_waiter()
                    await waiter.wait(deadline)
                    self._waiter = None
                else:
                    break
        finally:
            self._waiter = None
            lane.waiting.pop(self, None)
            lane.promote()
        self._check()
        if self.buffer:
            return self.buffer.take(count)
        if self._error is not None:
            raise _fresh(self._error)
        return []

    def _check(self) -> None:
        if self._closed:
            raise BackendClosedError(f"{self!r} is closed")
        failure = self._failure
        if failure is not None:
            self._failure = None
            raise _fresh(failure)

    async def aclose(self) -> None:
        """Leave the hub (the last reader closes its shared reads). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.buffer.clear()
        self.wake()
        with anyio.CancelScope(shield=True):
            await self._hub.interrupt_for(self)
            await self._hub.leave(self)
        lane = self.lane
        if lane is not None:
            lane.waiting.pop(self, None)
            lane.promote()


def _fresh(error: StreamsinkError) -> StreamsinkError:
    """A copy of ``error`` to raise in this task (one error object is shared by many readers,
    and raising it would chain their tracebacks)."""
    try:
        fresh = copy.copy(error)
    except Exception:  # an error class that cannot be rebuilt from its args
        return error
    fresh.__cause__ = error.__cause__
    fresh.__traceback__ = None
    return fresh
