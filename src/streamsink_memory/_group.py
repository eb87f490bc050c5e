"""A consumer group of an in-memory stream: its consumers and its pending-entries list.

Plain mutable classes with ``__slots__``: they are the broker's private state, never handed out.
A group's pending-entries list (PEL) is a dict ``entry id -> Pending``. Entries only ever enter
it through :meth:`Group.deliver_new`, in increasing id order, so the dict's insertion order *is*
id order. For cursor seeks (claims) the group also keeps ``order``, the same ``Pending`` objects
in a list searched with :func:`bisect`; removed ones stay in that list (their ``owner`` is None)
until it is rebuilt once more than half of it is dead.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from operator import attrgetter
from typing import TYPE_CHECKING

from streamsink.backend import Gap, Record, RecordBatch

from ._keys import _COMPACT_MIN, format_key, parse_key

if TYPE_CHECKING:
    from ._stream import Stream

__all__ = ["Consumer", "Group", "Pending"]


class Pending:
    """One PEL entry: who owns it, how often it was delivered, when it was last delivered
    (``clock`` time; ``-inf`` after a nack so it is claimable at once). ``owner`` is None once
    the entry left the PEL."""

    __slots__ = ("count", "entry_id", "key", "owner", "time")

    def __init__(self, entry_id: str, key: int, owner: Consumer, time: float) -> None:
        self.entry_id = entry_id
        self.key = key
        self.owner: Consumer | None = owner
        self.count = 1
        self.time = time


_pending_key = attrgetter("key")
_new_pending = object.__new__


class Consumer:
    """A named consumer of a group, the PEL entries it owns (unordered), and when it last read
    or claimed (``seen``, ``clock`` time; Redis's seen-time, shown as idle by operators)."""

    __slots__ = ("name", "pending", "seen")

    def __init__(self, name: str, seen: float = -math.inf) -> None:
        self.name = name
        self.pending: dict[str, Pending] = {}
        self.seen = seen


class Group:
    """A consumer group: last-delivered key, PEL, consumers. ``lost`` is set when the group is
    dropped (or its stream flushed or destroyed); a lost group is never used again."""

    __slots__ = ("consumers", "last_key", "last_pos", "lost", "name", "order", "pel")

    def __init__(self, name: str, last_key: int, last_pos: int | None = 0) -> None:
        self.name = name
        self.last_key = last_key
        # Position (1 = the first entry ever appended) of the last entry delivered, None when
        # not known (a resume from an id that trimming overtook): gaps are told by positions.
        self.last_pos = last_pos
        self.pel: dict[str, Pending] = {}
        self.order: list[Pending] = []
        self.consumers: dict[str, Consumer] = {}
        self.lost = False

    def consumer(self, name: str, now: float | None = None) -> Consumer:
        """The consumer called ``name``, created on first use (as Redis does); ``now`` is the
        time it is seen at (a consumer made without one counts as idle since ever)."""
        consumer = self.consumers.get(name)
        if consumer is None:
            consumer = self.consumers[name] = Consumer(name)
        if now is not None:
            consumer.seen = now
        return consumer

    def _remove(self, pending: Pending) -> None:
        del self.pel[pending.entry_id]
        if pending.owner is not None:
            del pending.owner.pending[pending.entry_id]
            pending.owner = None
        self._compact()

    def _compact(self) -> None:
        """Rebuild ``order`` once more than half of it is removed entries."""
        dead = len(self.order) - len(self.pel)
        if dead > _COMPACT_MIN and dead > len(self.pel):
            self.order = list(self.pel.values())  # dict order is id order

    # -- reading -------------------------------------------------------------------------------

    def deliver_new(
        self, stream: Stream, consumer: Consumer, count: int, now: float
    ) -> list[Record]:
        """XREADGROUP ``>``: entries after the last-delivered id; they become ``consumer``'s.

        Entries trimmed before the group got to them come back as the batch's ``gap``
        (a :class:`RecordBatch`), once: the group's position moves past them."""
        consumer.seen = now
        keys = stream.keys
        start = bisect_right(keys, self.last_key, stream.head)
        if start == len(keys):
            last_pos = self.last_pos
            if last_pos is not None and last_pos < stream.gone():
                return RecordBatch((), self._skip(stream, None, stream.gone()))
            return []
        records = stream.records[start : start + count]
        pel, order, owned = self.pel, self.order, consumer.pending
        new = _new_pending
        for key, record in zip(keys[start : start + len(records)], records, strict=True):
            # Pending's fields set here rather than by its __init__: one call less per entry.
            pending = new(Pending)
            pending.entry_id = entry_id = record.entry_id
            pending.key = key
            pending.owner = consumer
            pending.count = 1
            pending.time = now
            pel[entry_id] = pending
            owned[entry_id] = pending
            order.append(pending)
        first_pos = stream.position(start)
        gap = None
        if self.last_pos != first_pos - 1:
            gap = self._skip(stream, records[0].entry_id, first_pos - 1)
        self.last_key = keys[start + len(records) - 1]
        self.last_pos = first_pos + len(records) - 1
        if gap is not None:
            return RecordBatch(records, gap)
        return records

    def _skip(self, stream: Stream, before: str | None, to_pos: int) -> Gap:
        """The gap between the group's position and ``to_pos``, which the group moves to."""
        last_pos = self.last_pos
        self.last_pos = to_pos
        return Gap(
            stream_id=stream.stream_id,
            after=format_key(self.last_key) if self.last_key else None,
            before=before,
            count=None if last_pos is None else to_pos - last_pos,
        )

    def read_own(
        self, stream: Stream, consumer: Consumer, after: int, count: int, now: float
    ) -> list[Record]:
        """XREADGROUP with an id: ``consumer``'s pending entries after ``after``, in id order,
        each counted as a new delivery (Redis increments the delivery count and resets the idle
        time on such history reads). Entries whose data was trimmed are dropped from the PEL."""
        consumer.seen = now
        first = stream.first_key()
        candidates: list[Pending] = []
        for pending in list(consumer.pending.values()):
            if pending.key <= after:
                continue
            if first is None or pending.key < first:
                self._remove(pending)
            else:
                candidates.append(pending)
        chosen = heapq.nsmallest(count, candidates, key=_pending_key)
        return [self._redeliver(stream, p, now) for p in chosen]

    def claim(
        self,
        stream: Stream,
        consumer: Consumer,
        cursor: int,
        min_idle: float,
        count: int,
        now: float,
    ) -> tuple[list[Record], int]:
        """XAUTOCLAIM: scan the PEL from ``cursor`` (at most ``10 * count`` entries, as Redis),
        move entries idle for ``min_idle`` or more to ``consumer``. Entries whose data is gone
        are dropped from the PEL and count against ``count`` (as in Redis 7). Returns the claimed
        records and the next cursor, 0 once the end of the PEL was reached."""
        consumer.seen = now
        order = self.order  # may be rebuilt by _remove below; this list stays valid
        index = bisect_left(order, cursor, key=_pending_key)
        attempts = count * 10
        first = stream.first_key()
        claimed: list[Record] = []
        while index < len(order) and attempts > 0 and count > 0:
            pending = order[index]
            index += 1
            if pending.owner is None:
                continue
            attempts -= 1
            if now - pending.time < min_idle:
                continue
            count -= 1
            if first is None or pending.key < first:
                self._remove(pending)
                continue
            owner = pending.owner
            if owner is not consumer:
                del owner.pending[pending.entry_id]
                consumer.pending[pending.entry_id] = pending
                pending.owner = consumer
            claimed.append(self._redeliver(stream, pending, now))
        while index < len(order):
            if order[index].owner is not None:
                return claimed, order[index].key
            index += 1
        return claimed, 0

    def _redeliver(self, stream: Stream, pending: Pending, now: float) -> Record:
        pending.count += 1
        pending.time = now
        stored = stream.record(pending.key)
        assert stored is not None  # callers checked the entry is still in the stream
        return Record(stored.entry_id, stored.name, stored.payload, stored.topic, pending.count)

    # -- acknowledging -------------------------------------------------------------------------

    def resolve(self, entry_ids: list[str] | tuple[str, ...]) -> list[Pending]:
        """The PEL entries among ``entry_ids`` (unknown ids skipped, non-canonical spellings
        such as ``"5"`` for ``"5-0"`` accepted). Validates every id before returning.

        :raises ConfigurationError: an id that is not ``<ms>-<seq>``.
        """
        found: list[Pending] = []
        for entry_id in entry_ids:
            pending = self._lookup(entry_id)
            if pending is not None:
                found.append(pending)
        return found

    def _lookup(self, entry_id: str) -> Pending | None:
        pel = self.pel
        pending = pel.get(entry_id)
        return pending if pending is not None else pel.get(format_key(parse_key(entry_id)))

    def ack(self, entry_ids: list[str] | tuple[str, ...]) -> int:
        """XACK: drop entries from the PEL; returns how many were pending."""
        # The usual acks are of ids the group handed out, all pending: looked up at C speed.
        found = list(map(self.pel.get, entry_ids))
        if None in found:  # unknown ids, or ones spelled otherwise: each resolved
            resolved = self.resolve(entry_ids)
            return self._drop([pending.entry_id for pending in resolved], resolved)
        return self._drop(entry_ids, found)  # type: ignore[arg-type]  # no None in it

    def _drop(self, entry_ids: Sequence[str], found: list[Pending]) -> int:
        """Remove ``found``, the PEL entries of ``entry_ids`` (the same entry may be twice)."""
        pel = self.pel
        for entry_id, pending in zip(entry_ids, found, strict=True):
            owner = pending.owner
            if owner is not None:  # None: the same id twice in one call
                del pel[entry_id]
                del owner.pending[entry_id]
                pending.owner = None
        self._compact()
        return len(found)

    def nack(self, consumer: Consumer, keys: list[str] | tuple[str, ...]) -> None:
        """Make ``consumer``'s current deliveries among ``keys`` claimable at once (idle time
        infinite); superseded deliveries and other consumers' entries are left alone."""
        for pending in self._current(consumer, keys):
            pending.time = -math.inf

    def summary(self, now: float) -> tuple[int, float | None]:
        """XPENDING's summary and more: how many entries are pending, and how long the
        longest-idle one has been idle (None when none is pending; ``inf`` after a nack)."""
        pel = self.pel
        if not pel:
            return 0, None
        return len(pel), now - min(pending.time for pending in pel.values())

    def touch(self, consumer: Consumer, keys: list[str] | tuple[str, ...], now: float) -> None:
        """Reset the idle time of ``consumer``'s current deliveries among ``keys``; superseded
        deliveries and other consumers' entries are left alone."""
        for pending in self._current(consumer, keys):
            pending.time = now

    def _current(self, consumer: Consumer, keys: list[str] | tuple[str, ...]) -> list[Pending]:
        """The PEL entries ``keys`` name that ``consumer`` owns and whose latest delivery is the
        one named (a key's ``delivery_count``; a plain id names the latest delivery)."""
        found: list[Pending] = []
        lookups = [(key, self._lookup(key)) for key in keys]  # every id validated first
        for key, pending in lookups:
            if pending is None or pending.owner is not consumer:
                continue
            count = getattr(key, "delivery_count", None)
            if count is None or count == pending.count:
                found.append(pending)
        return found
