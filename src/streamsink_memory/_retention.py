"""Retention beyond ``maxlen`` on the memory backend: ``max_age`` and ``idle_ttl``.

Appends of a backend with either option go through :class:`Retention` instead of the plain
append path, so a backend with both off pays nothing for them. The rules are Redis's, on the
broker's clocks: after the entries are appended, each stream they went to is trimmed of the
entries older than ``max_age`` (``XTRIM MINID``, but exact: ids' times are the broker's
``wall_clock``) and, with ``idle_ttl``, set to expire that long after now (``PEXPIRE``, on the
broker's ``clock``; see :meth:`MemoryBroker.expire_idle`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, final

from streamsink.backend import Entry

from ._keys import _SEQ_BITS
from ._options import MemoryOptions

if TYPE_CHECKING:
    from ._broker import MemoryBroker

__all__ = ["Retention"]


@final
class Retention:
    """The retention rules of one backend: ``max_age`` (ms, 0 = off), ``idle_ttl`` (s, 0 = off)."""

    __slots__ = ("idle_ttl", "max_age_ms")

    def __init__(self, max_age: float, idle_ttl: float) -> None:
        self.max_age_ms = round(max_age * 1000)
        self.idle_ttl = idle_ttl

    @classmethod
    def of(cls, options: MemoryOptions) -> Retention | None:
        """The rules ``options`` ask for, None when both are off."""
        if not options.max_age and not options.idle_ttl:
            return None
        return cls(options.max_age, options.idle_ttl)

    def append(self, broker: MemoryBroker, entries: Sequence[Entry], maxlen: int) -> list[str]:
        """Append ``entries`` (trimming to ``maxlen`` as usual), then apply the rules to each
        stream appended to; returns the ids, in order."""
        ids = broker.append_entries(entries, maxlen=maxlen)
        stream_ids = dict.fromkeys(entry.stream_id for entry in entries)
        if self.max_age_ms:
            min_key = max(0, int(broker.wall_clock() * 1000) - self.max_age_ms) << _SEQ_BITS
            for stream_id in stream_ids:
                broker._streams[stream_id].trim_before(min_key)
        if self.idle_ttl:
            for stream_id in stream_ids:
                broker._refresh(stream_id, self.idle_ttl)
        return ids
