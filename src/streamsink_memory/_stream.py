"""One in-memory stream: its entries, id assignment, trimming, and its consumer groups.

Storage: a stream keeps two parallel lists, ``keys`` and ``records``, plus ``head``, the index
of the first live entry. Trimming only moves ``head``; the dead prefix is cut off once it is
both large and more than half the list (amortised O(1) per entry). The stored :class:`Record`
objects have ``delivery_count == 1`` and are handed out as they are on first deliveries and
fan-out reads, so a read allocates nothing per entry. Groups are in :mod:`._group`.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from streamsink.backend import Gap, Record, RecordBatch, StartPosition

from ._group import Group
from ._keys import _COMPACT_MIN, _SEQ_BITS, _SEQ_MAX, format_key, start_key

__all__ = ["Stream"]

_record = tuple.__new__
_SEQ_TEXTS = 1024
_SEQ_TEXT = tuple(str(seq) for seq in range(_SEQ_TEXTS))


class Stream:
    """One stream incarnation. ``destroyed`` / ``lost`` mark an incarnation that was removed
    from its broker by ``destroy`` / ``flush``; handles bound to it notice and never use it
    again, even if a new stream with the same id appears (a new incarnation, new ``generation``).
    """

    __slots__ = (
        "appended",
        "destroyed",
        "generation",
        "groups",
        "head",
        "id_prefix",
        "keys",
        "last_ms",
        "last_seq",
        "lost",
        "records",
        "stream_id",
        "trimmed_key",
    )

    def __init__(self, stream_id: str, generation: int) -> None:
        self.stream_id = stream_id
        self.generation = generation
        self.keys: list[int] = []
        self.records: list[Record] = []
        self.head = 0
        self.last_ms = self.last_seq = 0  # the id of the last entry ever appended
        self.id_prefix = "0-"  # f"{last_ms}-"
        self.appended = 0  # entries ever appended: readers compare it to see a writer go on
        self.trimmed_key = 0  # the key of the newest entry trimmed away (0: none yet)
        self.groups: dict[str, Group] = {}
        self.destroyed = False
        self.lost = False

    @property
    def last_key(self) -> int:
        """The key of the last entry ever appended (0 before any), even if trimmed."""
        return self.last_ms << _SEQ_BITS | self.last_seq

    def size(self) -> int:
        """How many entries the stream holds now."""
        return len(self.keys) - self.head

    def append(
        self, name: str | None, payload: bytes | None, topic: str | None, ms: int, maxlen: int
    ) -> str:
        """XADD ``MAXLEN <maxlen> *``: the id is ``<ms>-0`` unless ``ms`` is not after the last
        id's time (same millisecond, or a clock that went back), then the last time with the
        next sequence number. ``maxlen`` 0 means unbounded."""
        # The last id is kept as its two numbers, and the text "<ms>-" of its time: entries
        # appended in the same millisecond only add their sequence number's text (from a
        # table while it is small), a third of the cost of formatting both numbers.
        if ms > self.last_ms:
            seq = 0
            self.last_ms = ms
            self.id_prefix = f"{ms}-"
        else:
            ms = self.last_ms
            seq = self.last_seq + 1
            if seq > _SEQ_MAX:
                ms += 1
                seq = 0
                self.last_ms = ms
                self.id_prefix = f"{ms}-"
        self.last_seq = seq
        key = ms << _SEQ_BITS | seq
        entry_id = self.id_prefix + (_SEQ_TEXT[seq] if seq < _SEQ_TEXTS else str(seq))
        if payload is not None and type(payload) is not bytes:
            payload = bytes(payload)  # never keep a caller's mutable buffer
        self.appended += 1
        keys = self.keys
        keys.append(key)
        # tuple.__new__ skips the NamedTuple's Python-level __new__ (~230 -> ~110 ns per append).
        self.records.append(_record(Record, (entry_id, name, payload, topic, 1)))
        if maxlen and len(keys) - self.head > maxlen:
            self.head = head = len(keys) - maxlen
            self.trimmed_key = keys[head - 1]
            if head > _COMPACT_MIN and head * 2 > len(keys):
                self.trim(maxlen)
        return entry_id

    def trim(self, maxlen: int) -> None:
        """Keep the newest ``maxlen`` entries."""
        self.head = max(self.head, len(self.keys) - maxlen)
        if self.head:
            self.trimmed_key = max(self.trimmed_key, self.keys[self.head - 1])
        if self.head > _COMPACT_MIN and self.head * 2 > len(self.keys):
            del self.keys[: self.head]
            del self.records[: self.head]
            self.head = 0

    def trim_before(self, min_key: int) -> None:
        """XTRIM ``MINID``: drop the entries with keys below ``min_key`` (exactly)."""
        head = bisect_left(self.keys, min_key, self.head)
        if head > self.head:
            self.head = head
            self.trimmed_key = max(self.trimmed_key, self.keys[head - 1])
            if head > _COMPACT_MIN and head * 2 > len(self.keys):
                del self.keys[:head]
                del self.records[:head]
                self.head = 0

    def gone(self) -> int:
        """How many entries were trimmed away: the position of the last of them."""
        return self.appended - len(self.keys) + self.head

    def position(self, index: int) -> int:
        """The position of the entry at ``index`` of the lists (1 = the first ever appended)."""
        return self.appended - len(self.keys) + index + 1

    def start_position(self, start: StartPosition) -> tuple[int, int | None]:
        """The key a new group or reader starts after, and the position of that point: the
        entries it has behind it. Entries trimmed before it started are not its loss, except
        after a resume ``after(id)`` from an id trimming has overtaken, whose losses are not
        known (None)."""
        key = start_key(start, self.last_key)
        if key >= self.last_key:
            return key, self.appended
        first = self.first_key()
        if first is not None and key >= first:
            return key, self.position(bisect_right(self.keys, key, self.head) - 1)
        if key >= self.trimmed_key or start.kind != "after":
            return key, self.gone()
        return key, None

    def first_key(self) -> int | None:
        """The key of the oldest entry still stored, None when the stream is empty."""
        return self.keys[self.head] if self.head < len(self.keys) else None

    def record(self, key: int) -> Record | None:
        """The stored entry with ``key``, None when it was trimmed (or never existed)."""
        index = bisect_left(self.keys, key, self.head)
        if index < len(self.keys) and self.keys[index] == key:
            return self.records[index]
        return None

    def read_after(self, key: int, count: int) -> tuple[list[Record], int]:
        """XREAD: up to ``count`` entries with greater keys, and the new cursor."""
        keys = self.keys
        start = bisect_right(keys, key, self.head)
        if start == len(keys):
            return [], key
        records = self.records[start : start + count]
        return records, keys[start + len(records) - 1]

    def read_from(self, key: int, pos: int | None, count: int) -> tuple[list[Record], int, int]:
        """:meth:`read_after` for a reader at position ``pos`` (None: not known): the records
        (a :class:`RecordBatch` with a ``gap`` when entries after the cursor were trimmed), the
        new cursor and the new position."""
        keys = self.keys
        start = bisect_right(keys, key, self.head)
        gone = self.gone()
        if start == len(keys):
            if pos is not None and pos < gone:
                gap = Gap(
                    stream_id=self.stream_id, after=_after(key), before=None, count=gone - pos
                )
                return RecordBatch((), gap), key, gone
            return [], key, gone if pos is None else pos
        records = self.records[start : start + count]
        first_pos = self.position(start)
        cursor = keys[start + len(records) - 1]
        if pos == first_pos - 1:
            return records, cursor, first_pos + len(records) - 1
        gap = Gap(
            stream_id=self.stream_id,
            after=_after(key),
            before=records[0].entry_id,
            count=None if pos is None else first_pos - 1 - pos,
        )
        return RecordBatch(records, gap), cursor, first_pos + len(records) - 1


def _after(key: int) -> str | None:
    return format_key(key) if key else None
