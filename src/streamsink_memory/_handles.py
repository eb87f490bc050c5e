"""The handles a memory backend hands out: a group consumer and a fan-out reader.

Every call is an anyio checkpoint taken *before* any state changes, so a cancelled call changed
nothing; after it the work is synchronous (atomic with respect to other tasks). Blocking reads
wait in :meth:`MemoryBroker._wait`, which leaves nothing behind when cancelled.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections.abc import Sequence
from typing import TYPE_CHECKING

import anyio

from streamsink import BackendClosedError, ConfigurationError
from streamsink.backend import (
    GroupLostError,
    PendingSummary,
    Record,
    RecordBatch,
    StartPosition,
    StreamDestroyedError,
)
from streamsink.lowlevel import checkpoint, running_loop

from ._group import Group
from ._keys import parse_key, start_key
from ._stream import Stream

if TYPE_CHECKING:
    from ._broker import MemoryBroker
    from ._shared import MemorySharedReads

__all__ = ["Handles", "MemoryGroupConsumer", "MemoryStreamReader"]

Handles = set["MemoryGroupConsumer | MemoryStreamReader | MemorySharedReads"]
"""The open handles of one backend, closed with it."""


def _check_count(count: int) -> None:
    if type(count) is not int or count < 1:
        raise ConfigurationError(f"count must be a positive integer, got {count!r}")


def _ensure_group(broker: MemoryBroker, stream_id: str, name: str, start: StartPosition) -> Group:
    """XGROUP CREATE ... MKSTREAM: an existing group keeps its position. The start is
    validated first, so a bad one creates nothing."""
    stream = broker._streams.get(stream_id)
    pos: int | None
    if stream is None:
        key, pos = start_key(start, 0), 0
        stream = broker._create(stream_id)
    else:
        key, pos = stream.start_position(start)
    group = stream.groups.get(name)
    if group is None:
        group = stream.groups[name] = Group(name, key, pos)
    return group


class MemoryGroupConsumer:
    """One named consumer of a group on a stream of a :class:`MemoryBroker`.

    Implements :class:`streamsink.backend.GroupConsumer`. Open it with
    :meth:`MemoryBackend.open_group_consumer`.

    Delivery counts follow Redis: 1 on a first delivery; +1 each time the entry is read again
    through :meth:`read_own_pending` (Redis counts history reads of ``XREADGROUP`` as
    deliveries) or claimed through :meth:`claim_idle`.
    """

    __slots__ = (
        "_broker",
        "_closed",
        "_consumer",
        "_cursor",
        "_group",
        "_group_name",
        "_handles",
        "_stream",
        "_stream_id",
    )

    def __init__(
        self,
        broker: MemoryBroker,
        stream_id: str,
        group: str,
        consumer: str,
        start: StartPosition,
        handles: Handles,
    ) -> None:
        self._broker = broker
        self._stream_id = stream_id
        self._group_name = group
        self._consumer = consumer
        self._handles = handles
        self._closed = False
        self._cursor = 0  # claim_idle's XAUTOCLAIM cursor (a key); 0 = start of the PEL
        self._group = _ensure_group(broker, stream_id, group, start)
        self._group.consumer(consumer, broker.clock())
        self._stream: Stream = broker._streams[stream_id]
        handles.add(self)

    def __repr__(self) -> str:
        return (
            f"<MemoryGroupConsumer {self._consumer!r} of group {self._group_name!r} "
            f"on {self._stream_id!r}{' (closed)' if self._closed else ''}>"
        )

    @property
    def consumer(self) -> str:
        """This consumer's name within the group."""
        return self._consumer

    @property
    def stream_id(self) -> str:
        return self._stream_id

    @property
    def group(self) -> str:
        return self._group_name

    def _live_group(self) -> Group:
        """The group to act on, or the error this handle's calls raise now."""
        if self._closed:
            raise BackendClosedError(f"{self!r} is closed")
        if self._stream.destroyed:
            raise StreamDestroyedError(f"stream {self._stream_id!r} was destroyed")
        group = self._group
        if group.lost:
            # Someone else may have re-created the group already: with Redis the next command
            # would simply work, so rebind instead of failing.
            stream = self._broker._streams.get(self._stream_id)
            found = stream.groups.get(self._group_name) if stream is not None else None
            if stream is None or found is None:
                raise GroupLostError(
                    f"consumer group {self._group_name!r} on stream {self._stream_id!r} "
                    "no longer exists"
                )
            self._stream, self._group, self._cursor = stream, found, 0
            group = found
        return group

    async def ensure_group(self, start: StartPosition) -> None:
        """Create the group at ``start`` unless it exists (then its position wins), creating
        the stream if needed. Heals a :class:`GroupLostError`.

        :raises StreamDestroyedError: the stream was destroyed since this handle was opened.
        """
        await checkpoint()
        if self._closed:
            raise BackendClosedError(f"{self!r} is closed")
        if self._stream.destroyed:
            raise StreamDestroyedError(f"stream {self._stream_id!r} was destroyed")
        group = _ensure_group(self._broker, self._stream_id, self._group_name, start)
        if group is not self._group:
            self._group, self._cursor = group, 0
            self._stream = self._broker._streams[self._stream_id]
        group.consumer(self._consumer, self._broker.clock())

    async def read_new(self, count: int, block: float) -> list[Record]:
        """Up to ``count`` entries never delivered to the group, waiting up to ``block``
        seconds for the first (``block <= 0``: do not wait; ``math.inf``: wait forever)."""
        _check_count(count)
        await checkpoint()
        deadline: float | None = None
        timed_out = False
        while True:
            group = self._live_group()
            # Batch up only a reader that is behind: one woken by an append reads at once.
            if block > 0 and deadline is None and await self._gather(group, count):
                group = self._live_group()
            consumer = group.consumer(self._consumer)
            records = group.deliver_new(self._stream, consumer, count, self._broker.clock())
            if records or block <= 0 or timed_out or type(records) is RecordBatch:
                return records
            if deadline is None:
                deadline = anyio.current_time() + block
            timed_out = not await self._broker._wait(self._stream_id, deadline)

    async def _gather(self, group: Group, count: int) -> bool:
        """Some entries wait, fewer than ``count``: while a writer keeps appending (each pass of
        the event loop brings more), let it go on, so that one read takes a batch instead of
        one entry per pass. Costs a pass (two on trio) when nobody is writing; True if it
        yielded."""
        stream = self._stream
        keys = stream.keys
        waiting = len(keys) - bisect_right(keys, group.last_key, stream.head)
        if waiting == 0 or waiting >= count:
            return False
        loop = running_loop()
        if loop is not None:
            await _gather_on_asyncio(loop, stream, group, count - waiting)
            return True
        # Elsewhere (trio) the task itself checks after each pass. Trio runs a batch of
        # runnable tasks in random order, so a writer appending on every pass may run before
        # or after this task: only two passes in a row without an append mean it stopped.
        start = last = stream.appended
        quiet = 0
        while quiet < 2 and stream.appended - start < count - waiting:
            await checkpoint()
            if stream.destroyed or stream.lost or group.lost:
                break
            quiet = quiet + 1 if stream.appended == last else 0
            last = stream.appended
        return True

    async def read_own_pending(self, after: str | None, count: int) -> list[Record]:
        """This consumer's pending entries with ids after ``after``, in id order; each read
        increments its delivery count and resets its idle time, as Redis does for history reads.
        Entries whose data was trimmed are removed from the pending list and not returned
        (Redis would return them with no fields)."""
        _check_count(count)
        after_key = 0 if after is None else parse_key(after)
        await checkpoint()
        group = self._live_group()
        consumer = group.consumer(self._consumer)
        return group.read_own(self._stream, consumer, after_key, count, self._broker.clock())

    async def claim_idle(self, min_idle: float, count: int) -> list[Record]:
        """XAUTOCLAIM with a cursor kept in this handle: scans at most ``10 * count`` pending
        entries from the cursor, claims those idle ``>= min_idle`` seconds, and wraps to the
        start of the pending list once it reached the end. An empty answer therefore does not
        mean that nothing is idle further on: call again to page on."""
        _check_count(count)
        await checkpoint()
        group = self._live_group()
        consumer = group.consumer(self._consumer)
        records, self._cursor = group.claim(
            self._stream, consumer, self._cursor, min_idle, count, self._broker.clock()
        )
        return records

    async def pending_summary(self) -> PendingSummary:
        """How many entries the group holds pending (every consumer's) and how long the
        longest-idle one has been idle, on the broker's clock; changes nothing."""
        await checkpoint()
        count, idle = self._live_group().summary(self._broker.clock())
        return PendingSummary(count, idle)

    async def ack(self, entry_ids: Sequence[str]) -> None:
        """Drop entries from the group's pending list; unknown or acked ids are fine.

        :raises ConfigurationError: an id that is not ``<ms>-<seq>`` (nothing is acked).
        """
        await checkpoint()
        self._live_group().ack(_as_list(entry_ids))

    async def nack(self, entry_ids: Sequence[str]) -> None:
        """Make pending entries claimable at once (their idle time becomes infinite)."""
        await checkpoint()
        self._live_group().nack(_as_list(entry_ids))

    async def touch(self, entry_ids: Sequence[str]) -> None:
        """Reset the idle time of this consumer's pending entries among ``entry_ids``."""
        await checkpoint()
        group = self._live_group()
        group.touch(group.consumer(self._consumer), _as_list(entry_ids), self._broker.clock())

    async def aclose(self) -> None:
        """Close the handle; delete the consumer from its group unless it still owns pending
        entries (they stay for others to claim). Wakes this handle's blocked reads, which
        raise :class:`~streamsink.BackendClosedError`. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._handles.discard(self)
        group = self._group
        if not group.lost:
            consumer = group.consumers.get(self._consumer)
            if consumer is not None and not consumer.pending:
                del group.consumers[self._consumer]
        self._broker._notify(self._stream_id)


class MemoryStreamReader:
    """A fan-out reader on a stream of a :class:`MemoryBroker`: sees every entry after its
    start, stores nothing in the broker. Implements :class:`streamsink.backend.StreamReader`.

    Opening a reader does not create the stream. After :meth:`MemoryBroker.flush` the reader
    keeps its cursor and reads whatever is appended next; after ``destroy`` it raises
    :class:`StreamDestroyedError`.
    """

    __slots__ = ("_broker", "_closed", "_cursor", "_handles", "_pos", "_stream", "_stream_id")

    def __init__(
        self, broker: MemoryBroker, stream_id: str, start: StartPosition, handles: Handles
    ) -> None:
        stream = broker._streams.get(stream_id)
        self._broker = broker
        self._stream_id = stream_id
        self._stream: Stream | None = stream
        # The cursor, and its position in the stream (None: not known), to tell trimmed gaps.
        self._cursor, self._pos = (
            (start_key(start, 0), 0) if stream is None else stream.start_position(start)
        )
        self._handles = handles
        self._closed = False
        handles.add(self)

    def __repr__(self) -> str:
        closed = " (closed)" if self._closed else ""
        return f"<MemoryStreamReader on {self._stream_id!r}{closed}>"

    @property
    def stream_id(self) -> str:
        return self._stream_id

    def _live_stream(self) -> Stream | None:
        if self._closed:
            raise BackendClosedError(f"{self!r} is closed")
        stream = self._stream
        if stream is not None:
            if stream.destroyed:
                raise StreamDestroyedError(f"stream {self._stream_id!r} was destroyed")
            if not stream.lost:
                return stream
        stream = self._stream = self._broker._streams.get(self._stream_id)
        self._pos = 0  # a new incarnation of the stream: everything in it is new
        return stream

    async def read(self, count: int, block: float) -> list[Record]:
        """Up to ``count`` entries after the cursor, waiting up to ``block`` seconds for the
        first (``block <= 0``: do not wait; ``math.inf``: wait forever)."""
        _check_count(count)
        await checkpoint()
        deadline: float | None = None
        timed_out = False
        while True:
            stream = self._live_stream()
            if stream is not None:
                records, self._cursor, self._pos = stream.read_from(self._cursor, self._pos, count)
                if records or type(records) is RecordBatch:
                    return records
            if block <= 0 or timed_out:
                return []
            if deadline is None:
                deadline = anyio.current_time() + block
            timed_out = not await self._broker._wait(self._stream_id, deadline)

    async def aclose(self) -> None:
        """Close the reader and wake its blocked reads (they raise BackendClosedError).
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._handles.discard(self)
        self._broker._notify(self._stream_id)


async def _gather_on_asyncio(
    loop: asyncio.AbstractEventLoop, stream: Stream, group: Group, wanted: int
) -> None:
    """:meth:`MemoryGroupConsumer._gather` on asyncio: a callback, not the reading task, checks
    on each pass whether the writer appended again. The task wakes once per batch instead of
    once per entry, which halves the cost of a busy ``memory://`` subscription."""
    done = loop.create_future()
    start = last = stream.appended

    def check() -> None:
        nonlocal last
        if done.done():  # the reader was cancelled
            return
        appended = stream.appended
        if (
            appended == last
            or appended - start >= wanted
            or stream.destroyed
            or stream.lost
            or group.lost
        ):
            done.set_result(None)
        else:
            last = appended
            loop.call_soon(check)

    loop.call_soon(check)
    await done


def _as_list(entry_ids: Sequence[str]) -> list[str] | tuple[str, ...]:
    if isinstance(entry_ids, list | tuple):
        return entry_ids
    if isinstance(entry_ids, str):
        raise ConfigurationError("entry ids must be a sequence of ids, not one string")
    return list(entry_ids)
