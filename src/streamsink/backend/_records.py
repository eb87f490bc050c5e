"""What backends append and read back: entries, records, gaps and record batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import attrs

__all__ = ["DeliveryKey", "Entry", "Gap", "PendingSummary", "Record", "RecordBatch"]


# Entries and records are made once per event sent or read. A NamedTuple is immutable, builds
# in three quarters of the time of a frozen attrs class built through its slots' setters
# (python -m benchmarks.micro: ~220 ns against ~285 ns, and ~375 ns with attrs' own __init__),
# and needs no trick that a reordering of the fields could silently break.


class Entry(NamedTuple):
    """One entry to append: the event name (pulse field ``n``), the payload bytes (``p``) and an
    optional topic (``t``). Immutable; compares equal to a tuple of the same fields."""

    stream_id: str
    name: str
    payload: bytes
    topic: str | None = None


class Record(NamedTuple):
    """One entry as read back. ``name`` or ``payload`` is None when the entry lacks that field
    (entries written by other producers can be malformed). ``delivery_count`` counts this delivery:
    1 for a first delivery and for fan-out reads; with the entry id it names this delivery when
    the core nacks or touches it (:class:`DeliveryKey`), so a backend gives each delivery of an
    entry a higher count than the one before. Immutable; compares equal to a tuple of the same
    fields."""

    entry_id: str
    name: str | None
    payload: bytes | None
    topic: str | None = None
    delivery_count: int = 1


class DeliveryKey(str):
    """Names one delivery of an entry, for the settling calls that act on a delivery rather
    than on its entry (:meth:`~streamsink.backend.GroupConsumer.nack` and ``touch``): the
    entry id and the ``delivery_count`` of the :class:`Record` that delivered it.

    It *is* the entry id (a ``str`` subclass: it compares, hashes and prints as the id, and a
    backend written when these calls took plain ids keeps working, with the entry-level meaning
    it had), and carries the delivery count besides. Because two keys of one entry compare
    equal, a backend that tells deliveries apart looks at ``delivery_count`` itself.
    Immutable.
    """

    # No __slots__: a str subclass cannot have non-empty ones, so the count lives in the
    # instance __dict__. Keys are made per nack, touch or lease renewal, never per event read.

    delivery_count: int

    def __new__(cls, entry_id: str, delivery_count: int) -> DeliveryKey:
        key = str.__new__(cls, entry_id)
        object.__setattr__(key, "delivery_count", delivery_count)
        return key

    @classmethod
    def of(cls, record: Record) -> DeliveryKey:
        """The key of the delivery ``record`` made."""
        return cls(record.entry_id, record.delivery_count)

    @property
    def entry_id(self) -> str:
        """The entry id, as a plain ``str``."""
        return str.__str__(self)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"DeliveryKey is immutable: cannot set {name!r}")

    def __repr__(self) -> str:
        return f"DeliveryKey({str.__repr__(self)}, {self.delivery_count})"

    def __reduce__(self) -> tuple[type[DeliveryKey], tuple[str, int]]:
        return (DeliveryKey, (str.__str__(self), self.delivery_count))


@attrs.frozen(kw_only=True)
class Gap:
    """Entries a subscription never got because the stream lost them first (trimmed by
    ``maxlen`` or by retention) while they were still unread by it.

    - ``stream_id``: the stream.
    - ``after``: the last entry id the subscription (or its group) had reached, or the resume
      point it was opened ``after``; None when not known.
    - ``before``: the first entry id still there after the gap; None when the stream holds
      nothing after it yet.
    - ``count``: how many entries were lost; None when the backend cannot tell (a resume from an
      id that is no longer in the stream: entries after it may or may not have existed).
    """

    stream_id: str
    after: str | None
    before: str | None
    count: int | None

    def describe(self) -> str:
        """One line for logs and error reports."""
        lost = "an unknown number of entries" if self.count is None else f"{self.count} entries"
        after = self.after or "the start"
        before = self.before or "the end"
        return f"{lost} of {self.stream_id!r} after {after} and before {before} were trimmed unread"


class RecordBatch(list[Record]):
    """What a read may return instead of a plain list when it has more to say than its records.

    ``gap``: entries lost between what the reader had reached and the first record of this batch
    (then this batch may also be empty: the loss was found before anything new arrived). A backend
    that cannot detect losses returns plain lists; one that can declares
    :attr:`Capabilities.reports_gaps`.
    """

    __slots__ = ("gap",)

    def __init__(self, records: Sequence[Record] = (), gap: Gap | None = None) -> None:
        super().__init__(records)
        self.gap = gap


@attrs.frozen(slots=True)
class PendingSummary:
    """What a consumer group holds pending, as
    :meth:`~streamsink.backend.SummarizingGroupConsumer.pending_summary` tells it.

    - ``count``: entries delivered to any consumer of the group and not acknowledged yet.
    - ``oldest_idle``: seconds since the longest-idle of them was last delivered (or touched);
      None when ``count`` is 0, or when the backend could not tell without looking at more
      entries than it is willing to in one call (the core then scans for idle entries every
      claim interval, as it does without the capability). A nacked entry counts as idle for
      a very long time (it is claimable at once).
    """

    count: int
    oldest_idle: float | None
