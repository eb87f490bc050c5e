"""``stream_info``: a stream's JetStream state, and what a resume id means on it
(:class:`streamsink.backend.InspectingBackend`).

Entry ids are stream sequences, 1, 2, 3, ... without holes: streamsink never deletes single
entries, and ``max_msgs`` removes the oldest first. So the state's ``first_seq`` and
``last_seq`` say everything: ``last_seq`` entries were ever appended to this incarnation,
those before ``first_seq`` were trimmed, and every sequence from ``first_seq`` to ``last_seq``
is an entry still held.

What sequences cannot tell: after ``destroy`` a stream's sequences start at 1 again, so an id
from an earlier incarnation that is not past the new stream's last sequence looks like one of
its entries (``CONTINUES``). Only ids past the last sequence are told as another epoch
(``AFTER_LAST``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import nats.js.errors
from streamsink.backend import ResumeState, StartPosition, StreamInfo

from ._errors import translated

if TYPE_CHECKING:
    from ._backend import NatsBackend

__all__ = ["classify", "stream_info"]


async def stream_info(
    backend: NatsBackend, stream_id: str, resume_id: str | None
) -> StreamInfo | None:
    """The stream now (one JetStream API request), None when it does not exist.

    :raises ConfigurationError: a stream id too long for NATS, or a ``resume_id`` that is not a
        stream sequence (checked first, whether or not the stream exists).
    :raises BackendUnavailableError: the server cannot be reached.
    """
    from ._backend import check_start

    if resume_id is not None:
        check_start(StartPosition.after(resume_id))
    name = backend.stream_name(stream_id)
    with translated("stream_info", backend.description):
        try:
            info = await backend.js.stream_info(name)
        except nats.js.errors.NotFoundError:
            backend.forget_stream(stream_id)
            return None
    state = info.state
    first, last, held = state.first_seq, state.last_seq, state.messages
    return StreamInfo(
        stream_id=stream_id,
        length=held,
        first_id=str(first) if held else None,
        last_entry_id=str(last) if held else None,
        last_id=str(last) if last else None,
        entries_added=last,
        trimmed_through=str(first - 1) if first > 1 else None,
        resume=None if resume_id is None else classify(int(resume_id), first, last),
    )


def classify(seq: int, first: int, last: int) -> ResumeState:
    """Where reading after sequence ``seq`` stands on a stream whose first and last sequences
    are ``first`` and ``last`` (``first`` is ``last + 1`` when it holds nothing)."""
    if seq == last:
        return ResumeState.CONTINUES
    if seq > last:
        return ResumeState.AFTER_LAST
    if seq >= first:
        return ResumeState.CONTINUES
    # Before the first entry held: trimmed up to there, or (0, on a stream never trimmed)
    # before anything this stream ever had.
    return ResumeState.TRIMMED if first > 1 else ResumeState.BEFORE_FIRST
