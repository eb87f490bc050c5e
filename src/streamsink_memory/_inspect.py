"""``stream_info`` of the memory backend: a stream's counters, and what a resume id means on it
(:class:`streamsink.backend.InspectingBackend`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamsink.backend import ResumeState, StreamInfo

from ._keys import format_key, parse_key
from ._stream import Stream

if TYPE_CHECKING:
    from ._broker import MemoryBroker

__all__ = ["stream_info"]


def stream_info(broker: MemoryBroker, stream_id: str, resume_id: str | None) -> StreamInfo | None:
    """The stream ``stream_id`` of ``broker`` now, None when it does not exist.

    :raises ConfigurationError: ``resume_id`` is not a ``<ms>-<seq>`` id (checked first, so a bad
        id is refused whether or not the stream exists).
    """
    key = None if resume_id is None else parse_key(resume_id)
    if broker._deadlines:
        broker.expire_idle()
    stream = broker._streams.get(stream_id)
    if stream is None:
        return None
    first = stream.first_key()
    last = stream.last_key
    newest = stream.keys[-1] if first is not None else None
    return StreamInfo(
        stream_id=stream_id,
        length=stream.size(),
        first_id=None if first is None else format_key(first),
        last_entry_id=None if newest is None else format_key(newest),
        last_id=format_key(last) if last else None,
        entries_added=stream.appended,
        trimmed_through=format_key(stream.trimmed_key) if stream.trimmed_key else None,
        resume=None if key is None else _classify(stream, key, first),
    )


def _classify(stream: Stream, key: int, first: int | None) -> ResumeState:
    last = stream.last_key
    if key == last:
        return ResumeState.CONTINUES
    if key > last:
        return ResumeState.AFTER_LAST
    if first is not None and key >= first:
        return ResumeState.CONTINUES if stream.record(key) is not None else ResumeState.NOT_AN_ENTRY
    # Before the first entry held (or the stream is empty): trimmed up to there, or never had it.
    if stream.trimmed_key and stream.trimmed_key >= key:
        return ResumeState.TRIMMED
    return ResumeState.BEFORE_FIRST
