"""``ReaderBuffer``: what the hub handed one shared reader and the reader has not read yet,
bounded in entries and bytes, with the gap reports in their place; ``SharedRecords``: what a
reader takes of one batch that several readers got, with the memo of what they decoded."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from ..backend import Gap, Record, RecordBatch

__all__ = ["ReaderBuffer", "SharedRecords", "payload_bytes"]


def payload_bytes(records: Sequence[Record]) -> int:
    """The payload bytes of ``records`` (what a buffer's byte bound counts)."""
    return sum(len(record.payload) for record in records if record.payload is not None)


class SharedRecords(list[Record]):
    """Records of one batch the hub handed to several readers, as one of them reads them.

    ``decoded`` is shared by every reader of the batch: what the first of them made of an
    entry (by entry id), for the others to hand out as is rather than decode it again
    (:class:`~streamsink._consuming._intake.Intake`; only where decoding is the same for all:
    the default envelope decoder in auto mode). Never with a gap: a batch reporting one is a
    :class:`~streamsink.backend.RecordBatch`.
    """

    __slots__ = ("decoded",)

    def __init__(self, records: Sequence[Record], decoded: dict[str, Any]) -> None:
        super().__init__(records)
        self.decoded = decoded


class _Segment:
    """One batch as the hub handed it (shared by every reader it went to: never mutated), how
    far this reader has read it, the gap in front of it, and the memo its readers share."""

    __slots__ = ("decoded", "gap", "offset", "records")

    def __init__(
        self, records: Sequence[Record], gap: Gap | None, decoded: dict[str, Any] | None
    ) -> None:
        self.records = records
        self.gap = gap
        self.decoded = decoded
        self.offset = 0


class ReaderBuffer:
    """Batches waiting for one reader; ``offer`` refuses what would pass the bounds.

    A batch is taken whole or not at all, so what the reader got always ends at a cursor the
    backend gave (the hub detaches a reader whose buffer refuses a batch, at the cursor before it).
    """

    __slots__ = ("_bytes", "_entries", "_segments", "bound", "bound_bytes")

    def __init__(self, bound: int, bound_bytes: int) -> None:
        self.bound = bound
        self.bound_bytes = bound_bytes
        self._segments: deque[_Segment] = deque()
        self._entries = 0
        self._bytes = 0

    def __bool__(self) -> bool:
        return bool(self._segments)

    @property
    def entries(self) -> int:
        """Entries waiting."""
        return self._entries

    def offer(
        self,
        records: Sequence[Record],
        gap: Gap | None,
        nbytes: int,
        decoded: dict[str, Any] | None = None,
    ) -> bool:
        """Keep ``records`` (after ``gap``, if any; ``decoded``: the memo of the batch's
        readers, see :class:`SharedRecords`) unless that passes a bound of a buffer that
        already holds something (an empty buffer takes any one batch: the hub never reads more
        than the smallest bound at once, but a batch may be larger than the byte bound)."""
        if self._segments and (
            self._entries + len(records) > self.bound or self._bytes + nbytes > self.bound_bytes
        ):
            return False
        self._segments.append(_Segment(records, gap, decoded))
        self._entries += len(records)
        self._bytes += nbytes
        return True

    def take(self, count: int) -> Sequence[Record]:
        """Up to ``count`` of the oldest entries, as a :class:`RecordBatch` with the gap in front
        of them if there is one (possibly empty); never across a later gap. Call only when the
        buffer is not empty."""
        segments = self._segments
        first = segments[0]
        gap, first.gap = first.gap, None
        decoded = first.decoded
        if len(segments) == 1 and first.offset == 0 and len(first.records) <= count:
            # The usual take: one whole batch (no slicing, no byte count to keep).
            segments.popleft()
            self._entries = self._bytes = 0
            records = first.records
            if gap is not None:
                return RecordBatch(records, gap)
            return SharedRecords(records, decoded) if decoded is not None else list(records)
        out: list[Record] = []
        while segments and len(out) < count:
            segment = segments[0]
            if segment.gap is not None:
                break  # a later gap: reported with the next take
            if segment.decoded is not decoded:
                decoded = None  # entries of batches with different memos: none is used
            start = segment.offset
            chunk = segment.records[start : start + count - len(out)]
            out.extend(chunk)
            segment.offset = start + len(chunk)
            if segment.offset >= len(segment.records):
                segments.popleft()
        self._entries -= len(out)
        self._bytes = max(0, self._bytes - payload_bytes(out)) if self._segments else 0
        if gap is not None:
            return RecordBatch(out, gap)
        if decoded is not None:
            return SharedRecords(out, decoded)
        return out

    def clear(self) -> None:
        self._segments.clear()
        self._entries = self._bytes = 0
