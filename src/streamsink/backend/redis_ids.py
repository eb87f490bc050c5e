"""Entry ids of the form ``<ms>-<seq>``, as Redis Streams write them (and the memory backend, which
mimics them). Backend-neutral code never parses an id: ids are opaque to the core and ordered by
their backend's rule; these helpers are for backends whose ids look like Redis's."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from .._exceptions import ConfigurationError
from ._start import StartPosition

__all__ = ["after_timestamp_id", "id_time", "parse_entry_id", "start_after_id"]

_ENTRY_ID = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?", re.ASCII)
_MAX_PART = 2**64 - 1


def parse_entry_id(entry_id: str) -> tuple[int, int]:
    """Split a ``<ms>-<seq>`` id (Redis and memory backends) into integers; ``<ms>`` alone means
    ``<ms>-0``. Both parts are ASCII digits and fit in 64 bits, as Redis requires, so an id that
    one backend accepts every backend accepts.

    :raises ConfigurationError: anything else.
    """
    match = _ENTRY_ID.fullmatch(entry_id) if isinstance(entry_id, str) else None
    if match is None:
        raise ConfigurationError(
            f"entry id {entry_id!r:.80} is not of the form <ms>-<seq> (two decimal numbers)"
        )
    ms, seq = int(match[1]), int(match[2] or 0)
    if ms > _MAX_PART or seq > _MAX_PART:
        raise ConfigurationError(
            f"entry id {entry_id!r} is out of range: <ms> and <seq> must each be at most 2**64-1"
        )
    return ms, seq


_MAX_SEQ = 2**64 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def id_time(entry_id: str) -> datetime:
    """The time of a ``<ms>-<seq>`` id: its ``<ms>`` part, in UTC (what
    ``TimedBackend.entry_time`` answers for such ids; :func:`after_timestamp_id` is its inverse,
    so ``at(id_time(id))`` includes the entry).

    :raises ConfigurationError: not such an id.
    """
    ms, _ = parse_entry_id(entry_id)
    # Exact: a float of seconds would round some milliseconds down, and at() would then start
    # a millisecond early.
    return datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=ms % 1000 * 1000)


def after_timestamp_id(time: datetime) -> str:
    """The ``<ms>-<seq>`` id just before the first possible id at ``time``, so that reading
    *after* it includes entries stamped exactly at ``time`` (pulse's ``<ms>-0`` is exclusive)."""
    # In whole milliseconds by exact arithmetic: through a float of seconds some times round
    # down a millisecond, and the start would include entries a millisecond before ``time``.
    ms = (time - _EPOCH) // _MILLISECOND
    return "0-0" if ms <= 0 else f"{ms - 1}-{_MAX_SEQ}"


def start_after_id(start: StartPosition, newest: str) -> str:
    """The ``<ms>-<seq>`` id a new group or reader at ``start`` reads *after* (it gets entries with
    greater ids): ``newest`` for :meth:`~StartPosition.newest` (the stream's last id, or ``$``
    where the server resolves it), ``0-0`` for oldest, the id itself for ``after(id)`` (in
    canonical form), and the id just before the time for the inclusive ``at(time)``.

    :raises ConfigurationError: ``start`` is not a :class:`StartPosition`, or its id is not a
        ``<ms>-<seq>`` id.
    """
    if not isinstance(start, StartPosition):
        raise ConfigurationError(f"start must be a StartPosition, got {start!r}")
    if start.kind == "newest":
        return newest
    if start.kind == "oldest":
        return "0-0"
    if start.kind == "after":
        ms, seq = parse_entry_id(start.entry_id or "")
        return f"{ms}-{seq}"
    if start.time is None:
        raise ConfigurationError(f"invalid start position {start!r}")
    return after_timestamp_id(start.time)
