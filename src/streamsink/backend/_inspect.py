"""The optional inspection SPI: what a stream holds, and what a resume id means on it
(:class:`InspectingBackend`, declared by ``Capabilities.stream_info``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

import attrs

from ._protocols import Backend

__all__ = ["InspectingBackend", "ResumeState", "StreamInfo"]


class ResumeState(StrEnum):
    """What reading a stream *after* a given id would mean, as the backend orders its ids.

    - ``CONTINUES``: the id is an entry the stream still holds, or its last generated id:
      reading after it misses nothing.
    - ``TRIMMED``: the id is before the stream's first entry and entries up to it (at least) were
      trimmed away: reading after it goes on in the same stream, past a hole that the read
      reports (a :class:`~streamsink.backend.Gap`).
    - ``AFTER_LAST``: the id is after the stream's last generated id: it cannot be from this
      stream (the stream was re-created, or lost by the broker, since the id was read).
    - ``NOT_AN_ENTRY``: the id is between the first and the last entry but is none of them; as
      single entries are never deleted, it is from another incarnation of the stream.
    - ``BEFORE_FIRST``: the id is before the first entry and nothing was trimmed that far: the
      stream started after it, so it is from an earlier incarnation.

    The last three are *epochs*: the history the id belonged to is gone, and what the stream
    holds is a new stream (see :attr:`epoch`).
    """

    CONTINUES = "continues"
    TRIMMED = "trimmed"
    AFTER_LAST = "after_last"
    NOT_AN_ENTRY = "not_an_entry"
    BEFORE_FIRST = "before_first"

    @property
    def epoch(self) -> bool:
        """True when the id is not of the stream as it is now (its history is gone)."""
        return self not in (ResumeState.CONTINUES, ResumeState.TRIMMED)


@attrs.frozen(kw_only=True)
class StreamInfo:
    """A snapshot of one stream, from :meth:`InspectingBackend.stream_info`.

    - ``stream_id``: the stream.
    - ``length``: entries it holds now.
    - ``first_id`` / ``last_entry_id``: its oldest and newest entries held (None when empty).
    - ``last_id``: the last id it generated, even if that entry was trimmed since (``0-0``-like
      "nothing yet" ids are reported as None).
    - ``entries_added``: entries ever appended to this incarnation; None when the backend cannot
      tell (Redis before 7).
    - ``trimmed_through``: the newest id known to be removed from the stream; None when nothing
      was removed or the backend cannot tell which id (Redis reports only ``XDEL`` deletions
      there; trimming shows as ``entries_added > length``).
    - ``resume``: what reading after the ``resume_id`` given to ``stream_info`` would mean; None
      when none was given.
    """

    stream_id: str
    length: int
    first_id: str | None
    last_entry_id: str | None
    last_id: str | None
    entries_added: int | None
    trimmed_through: str | None
    resume: ResumeState | None = None

    @property
    def removed(self) -> int | None:
        """Entries appended and no longer held (trimmed or deleted); None when unknown."""
        return None if self.entries_added is None else self.entries_added - self.length


class InspectingBackend(Backend, Protocol):
    """A backend that can describe a stream (declared by ``Capabilities.stream_info``)."""

    async def stream_info(
        self, stream_id: str, *, resume_id: str | None = None
    ) -> StreamInfo | None:
        """The stream as it is now, in one round trip; None when the stream does not exist (never
        created, destroyed, or lost by the broker). With ``resume_id``, ``resume`` classifies it
        (:class:`ResumeState`), by the backend's own id order.

        :raises ConfigurationError: an invalid stream id, or a ``resume_id`` that is not an id of
            this backend.
        :raises BackendUnavailableError: the broker cannot be reached.
        """
        ...
