"""Entry ids of the memory backend: ``<ms>-<seq>`` text, kept as integer *keys* ``ms << 64 | seq``
so that ordering and lookups are integer comparisons and :func:`bisect` searches."""

from __future__ import annotations

from streamsink import ConfigurationError
from streamsink.backend import StartPosition
from streamsink.backend.redis_ids import parse_entry_id, start_after_id

__all__ = ["format_key", "parse_key", "start_key"]

_SEQ_BITS = 64
_SEQ_MAX = 2**_SEQ_BITS - 1
_COMPACT_MIN = 256  # dead slots tolerated before a list is rebuilt


def parse_key(entry_id: str) -> int:
    """The integer key of a ``<ms>-<seq>`` id. :raises ConfigurationError: not such an id."""
    ms, seq = parse_entry_id(entry_id)
    if seq > _SEQ_MAX:
        raise ConfigurationError(f"entry id {entry_id!r} has a sequence number above 2**64-1")
    return ms << _SEQ_BITS | seq


def format_key(key: int) -> str:
    """The ``<ms>-<seq>`` text of a key."""
    return f"{key >> _SEQ_BITS}-{key & _SEQ_MAX}"


def start_key(start: StartPosition, last_key: int) -> int:
    """The key a group or reader starts *after*: it receives entries with greater keys.

    :raises ConfigurationError: not a start position, or an id that is not ``<ms>-<seq>``.
    """
    return parse_key(start_after_id(start, format_key(last_key)))
