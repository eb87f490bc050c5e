"""The in-process broker: named streams with Redis Streams consumer-group semantics.

One :class:`MemoryBroker` is shared by every :class:`~streamsink_memory.MemoryBackend` opened on
it, whichever event loop they run in (asyncio and trio runs can alternate in one process). It
therefore stores no loop-bound object beyond a single wait: a blocked read creates a waiter
(:func:`streamsink.lowlevel.new_waiter`) in its own task, registers it for the stream, and
removes it when it wakes, times out or is cancelled. Appends set the waiters registered for their
stream, and only when there are some. The broker is not thread-safe: use it from one thread at a time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

import anyio
import attrs

from streamsink.backend import Entry
from streamsink.lowlevel import Waiter, new_waiter

from ._keys import format_key
from ._stream import Stream

__all__ = ["BrokerStatistics", "MemoryBroker", "PendingEntry"]


@attrs.frozen
class BrokerStatistics:
    """A snapshot of what a broker holds, so tests can check nothing leaks.

    ``blocked_readers`` counts reads (group or fan-out) waiting for entries right now.
    """

    streams: int
    entries: int
    groups: int
    consumers: int
    pending: int
    blocked_readers: int


@attrs.frozen
class PendingEntry:
    """One entry of a group's pending list, as XPENDING shows it. ``idle`` is in seconds of the
    broker's ``clock`` (infinite after a nack)."""

    entry_id: str
    consumer: str
    delivery_count: int
    idle: float


class MemoryBroker:
    """Streams keyed by stream id, with consumer groups that behave like Redis Streams groups.

    :param clock: monotonic seconds for pending entries' idle times (inject a fake to test
        redelivery without sleeping).
    :param wall_clock: epoch seconds for entry ids ``<ms>-<seq>``.

    Besides serving backends, the broker offers inspection (:meth:`statistics`,
    :meth:`pending`, :meth:`consumers`) and failure simulation (:meth:`drop_group`,
    :meth:`flush`) for tests.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.wall_clock = wall_clock
        self._streams: dict[str, Stream] = {}
        self._waiters: dict[str, set[Waiter]] = {}
        self._generation = 0
        # Idle TTLs (see _retention): stream id -> ``clock`` time it expires at, and the
        # earliest such time (inf: none), so that a check costs nothing until one is due.
        self._deadlines: dict[str, float] = {}
        self._next_deadline = math.inf

    def __repr__(self) -> str:
        return f"<MemoryBroker streams={len(self._streams)} at {id(self):#x}>"

    # -- writing ---------------------------------------------------------------------------

    def append(
        self,
        stream_id: str,
        name: str | None,
        payload: bytes | None,
        topic: str | None = None,
        *,
        maxlen: int = 0,
    ) -> str:
        """Append one entry and return its id. ``name`` or ``payload`` may be None, to write
        the malformed entries another producer could leave in a Redis stream."""
        if self._deadlines:
            self.expire_idle()
        stream = self._streams.get(stream_id)
        if stream is None:
            stream = self._create(stream_id)
        entry_id = stream.append(name, payload, topic, int(self.wall_clock() * 1000), maxlen)
        if self._waiters:
            self._notify(stream_id)
        return entry_id

    def append_entries(self, entries: Iterable[Entry], *, maxlen: int = 0) -> list[str]:
        """Append entries (to one or several streams) and return their ids, in order."""
        if self._deadlines:
            self.expire_idle()
        streams = self._streams
        waiters = self._waiters
        ms = int(self.wall_clock() * 1000)  # one call, one time, as one pipelined round trip
        ids: list[str] = []
        for entry in entries:
            stream_id = entry.stream_id
            stream = streams.get(stream_id)
            if stream is None:
                stream = self._create(stream_id)
            ids.append(stream.append(entry.name, entry.payload, entry.topic, ms, maxlen))
            if waiters:  # woken tasks run after this call returns: the batch is complete
                self._notify(stream_id)
        return ids

    # -- removing --------------------------------------------------------------------------

    def destroy(self, stream_id: str) -> bool:
        """Delete a stream with its entries and groups; returns whether it existed.

        Reads blocked on it wake up and raise :class:`~streamsink.backend.StreamDestroyedError`,
        as does every later call on a handle opened on it, even once the id is used again.
        """
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            return False
        stream.destroyed = True
        for group in stream.groups.values():
            group.lost = True
        self._deadlines.pop(stream_id, None)  # as DEL takes a key's TTL with it
        self._notify(stream_id)
        return True

    def drop_group(self, stream_id: str, group: str) -> bool:
        """Test hook: the group vanishes (as after ``XGROUP DESTROY``); returns whether it
        existed. Its consumers get :class:`~streamsink.backend.GroupLostError` until the group
        is re-created with ``ensure_group``."""
        stream = self._streams.get(stream_id)
        dropped = stream.groups.pop(group, None) if stream is not None else None
        if dropped is None:
            return False
        dropped.lost = True
        self._notify(stream_id)
        return True

    def flush(self) -> None:
        """Test hook: every stream vanishes, as after Redis ``FLUSHALL``. Group consumers get
        :class:`~streamsink.backend.GroupLostError` (not ``StreamDestroyedError``) until they
        re-create their group; fan-out readers keep their cursor and read what comes next."""
        streams, self._streams = self._streams, {}
        self._deadlines.clear()
        self._next_deadline = math.inf
        for stream in streams.values():
            _lose(stream)
        for stream_id in list(self._waiters):
            self._notify(stream_id)

    def expire_idle(self) -> list[str]:
        """Remove the streams whose idle TTL (``MemoryOptions.idle_ttl``) has passed on
        ``clock``, as :meth:`flush` removes every stream (Redis expiring a key looks the same
        to its readers): their group consumers get :class:`~streamsink.backend.GroupLostError`
        until they re-create their group, fan-out readers read what a new stream under the id
        gets. Returns the ids removed, sorted.

        Expiry is lazy: every append, read and inspection of the broker calls this first, and a
        blocked read wakes when its stream's TTL runs out. Call it after moving a fake ``clock``
        forward to wake reads that block meanwhile.
        """
        now = self.clock()
        if now < self._next_deadline:
            return []
        expired = sorted(sid for sid, deadline in self._deadlines.items() if deadline <= now)
        for stream_id in expired:
            del self._deadlines[stream_id]
            stream = self._streams.pop(stream_id, None)
            if stream is not None:
                _lose(stream)
                self._notify(stream_id)
        self._next_deadline = min(self._deadlines.values(), default=math.inf)
        return expired

    # -- inspecting ------------------------------------------------------------------------

    def statistics(self) -> BrokerStatistics:
        """Count streams, stored entries, groups, consumers, pending entries, blocked reads."""
        if self._deadlines:
            self.expire_idle()
        streams = self._streams.values()
        groups = [group for stream in streams for group in stream.groups.values()]
        return BrokerStatistics(
            streams=len(self._streams),
            entries=sum(stream.size() for stream in streams),
            groups=len(groups),
            consumers=sum(len(group.consumers) for group in groups),
            pending=sum(len(group.pel) for group in groups),
            blocked_readers=sum(len(waiters) for waiters in self._waiters.values()),
        )

    def stream_ids(self) -> list[str]:
        """The ids of the streams that exist, sorted."""
        if self._deadlines:
            self.expire_idle()
        return sorted(self._streams)

    def last_id(self, stream_id: str) -> str | None:
        """The id of the last entry ever appended to a stream (even if trimmed), None when
        the stream does not exist."""
        if self._deadlines:
            self.expire_idle()
        stream = self._streams.get(stream_id)
        return None if stream is None else format_key(stream.last_key)

    def entry_ids(self, stream_id: str) -> list[str]:
        """The ids of the entries a stream still holds, oldest first."""
        if self._deadlines:
            self.expire_idle()
        stream = self._streams.get(stream_id)
        return [] if stream is None else [r.entry_id for r in stream.records[stream.head :]]

    def pending(self, stream_id: str, group: str) -> list[PendingEntry]:
        """A group's pending entries in id order (like ``XPENDING``); empty when missing."""
        if self._deadlines:
            self.expire_idle()
        stream = self._streams.get(stream_id)
        found = stream.groups.get(group) if stream is not None else None
        if found is None:
            return []
        now = self.clock()
        return [
            PendingEntry(p.entry_id, p.owner.name, p.count, now - p.time)
            for p in found.pel.values()
            if p.owner is not None
        ]

    def consumers(self, stream_id: str, group: str) -> list[str]:
        """The names of a group's consumers, sorted; empty when the group is missing."""
        if self._deadlines:
            self.expire_idle()
        stream = self._streams.get(stream_id)
        found = stream.groups.get(group) if stream is not None else None
        return [] if found is None else sorted(found.consumers)

    # -- package internals -----------------------------------------------------------------

    def _refresh(self, stream_id: str, idle_ttl: float) -> None:
        """The stream was appended to: it now expires ``idle_ttl`` seconds from now."""
        deadline = self.clock() + idle_ttl
        self._deadlines[stream_id] = deadline
        if deadline < self._next_deadline:
            self._next_deadline = deadline

    def _create(self, stream_id: str) -> Stream:
        self._generation += 1
        stream = self._streams[stream_id] = Stream(stream_id, self._generation)
        return stream

    def _notify(self, stream_id: str) -> None:
        """Wake every read blocked on ``stream_id``; they re-check and wait again if needed."""
        waiters = self._waiters.pop(stream_id, None)
        if waiters:
            for waiter in waiters:
                waiter.set()

    async def _wait(self, stream_id: str, deadline: float) -> bool:
        """Block until ``_notify(stream_id)`` or the anyio ``deadline``; True when notified.

        The waiter lives only for this call, in this task's event loop, and is unregistered
        however the wait ends (notification, timeout, cancellation).
        """
        if self._deadlines and stream_id in self._deadlines:
            return await self._wait_expiring(stream_id, deadline)
        return await self._wait_plain(stream_id, deadline)

    async def _wait_plain(self, stream_id: str, deadline: float) -> bool:
        waiter = new_waiter()
        waiters = self._waiters.get(stream_id)
        if waiters is None:
            waiters = self._waiters[stream_id] = set()
        waiters.add(waiter)
        try:
            await waiter.wait(deadline)
        finally:
            waiters.discard(waiter)
            if not waiters and self._waiters.get(stream_id) is waiters:
                del self._waiters[stream_id]
        return waiter.is_set()

    async def _wait_expiring(self, stream_id: str, deadline: float) -> bool:
        """:meth:`_wait` on a stream with an idle TTL: wake when it expires too (True, as if
        notified: the caller re-checks and finds its group or stream lost). The TTL is on
        ``clock``, which may be fake: the wait is cut to what it says is left, then goes on
        (to ``deadline``) if the stream is still there."""
        while True:
            left = self._deadlines.get(stream_id, math.inf) - self.clock()
            cut = anyio.current_time() + max(left, 0.0)
            if await self._wait_plain(stream_id, min(deadline, cut)):
                return True
            if stream_id in self.expire_idle():
                return True
            if anyio.current_time() >= deadline:
                return False


def _lose(stream: Stream) -> None:
    """Mark a stream removed from its broker as lost (not destroyed), with its groups."""
    stream.lost = True
    for group in stream.groups.values():
        group.lost = True
