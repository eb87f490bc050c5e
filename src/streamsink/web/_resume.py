"""Where a response starts: the resume id a client sends (``Last-Event-ID``, ``?last_event_id=``,
``?after=``, in that order), checked before anything is streamed, and what it means on the stream
now (``epoch`` when the stream it came from is gone, asked of an :class:`InspectingBackend`)."""

from __future__ import annotations

from typing import Any, Literal, cast

import attrs

from .._exceptions import ConfigurationError
from .._streams import shown
from ..backend import Backend, InspectingBackend, StartPosition

__all__ = ["ResolvedResume", "Resume", "ResumeError", "plan_resume", "resolve_resume"]

#: the parameters a resume id may come in, in the order they win
HEADER = "Last-Event-ID header"
LAST_EVENT_ID = "last_event_id"
AFTER = "after"
FROM = "from"


class ResumeError(ConfigurationError):
    """A resume parameter the gateway cannot use (an SSE response answers 400 with its message,
    before anything is streamed). ``parameter`` names it: ``"Last-Event-ID header"``,
    ``"last_event_id"``, ``"after"``, ``"from"`` or ``"run_id"``."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


@attrs.frozen
class Resume:
    """What a request asks for: after ``entry_id`` (given as ``parameter``), or, with none, from
    ``start_from`` (``newest`` or ``oldest``)."""

    entry_id: str | None
    parameter: str | None
    start_from: Literal["newest", "oldest"] = "newest"


def _check_id(parameter: str, value: str, max_length: int) -> str:
    if len(value) > max_length:
        raise ResumeError(
            parameter, f"an entry id of {len(value)} characters; at most {max_length} are accepted"
        )
    if not value or not value.isascii() or not value.isprintable() or " " in value:
        raise ResumeError(
            parameter,
            f"{shown(value)} is not an entry id; expected the id of the last event received "
            "(e.g. 1700000000000-0)",
        )
    return value


def plan_resume(
    *,
    header: str | None = None,
    last_event_id: str | None = None,
    after: str | None = None,
    start_from: str | None = None,
    max_length: int = 64,
) -> Resume:
    """The resume a request asks for. The ``Last-Event-ID`` header wins over ``last_event_id``,
    which wins over ``after``; the winner is checked, the others are ignored. An empty header
    counts as absent (browsers send none on a first connect; a reset ``lastEventId`` is empty).

    :raises ResumeError: the winning id is malformed or too long, or ``start_from`` is neither
        ``newest`` nor ``oldest``.
    """
    if start_from is not None and start_from not in ("newest", "oldest"):
        raise ResumeError(
            FROM, f"{shown(start_from)} is not a start; expected 'newest' or 'oldest'"
        )
    start = cast(Literal["newest", "oldest"], start_from or "newest")
    for parameter, value in (
        (HEADER, header or None),
        (LAST_EVENT_ID, last_event_id),
        (AFTER, after),
    ):
        if value is not None:
            return Resume(_check_id(parameter, value, max_length), parameter, start)
    return Resume(None, None, start)


def resume_error(resume: Resume, exc: ConfigurationError) -> ResumeError:
    """A backend's refusal of the resume id, as a :class:`ResumeError` naming the parameter."""
    return ResumeError(
        resume.parameter or AFTER,
        f"{shown(resume.entry_id)} is not an entry id of this stream's backend ({exc})",
    )


ResolvedResume = tuple[StartPosition, "dict[str, Any] | None"]
"""Where a response's reader starts, and the ``epoch`` report to send first (or None)."""


async def resolve_resume(backend: Backend, stream_id: str, resume: Resume) -> ResolvedResume:
    """The start of the response's reader, and the ``epoch`` report to send first (or None).

    On a backend declaring ``Capabilities.stream_info`` the resume id is classified: a stream
    that is missing, or that the id cannot be from (re-created or lost while the client was
    away), is an epoch: the reader then starts at the oldest entry of the stream as it is now.
    Elsewhere the reader starts after the id, and no epoch is ever reported.

    :raises ResumeError: the backend refuses the id.
    :raises StreamsinkError: the backend could not be asked (e.g. unreachable).
    """
    if resume.entry_id is None:
        start = StartPosition.oldest() if resume.start_from == "oldest" else StartPosition.newest()
        return start, None
    if not backend.capabilities.stream_info:
        return StartPosition.after(resume.entry_id), None
    try:
        info = await cast(InspectingBackend, backend).stream_info(
            stream_id, resume_id=resume.entry_id
        )
    except ConfigurationError as exc:
        raise resume_error(resume, exc) from None
    if info is None:
        return StartPosition.oldest(), {"reason": "missing", "after": resume.entry_id}
    state = info.resume
    if state is not None and state.epoch:
        return StartPosition.oldest(), {"reason": str(state), "after": resume.entry_id}
    return StartPosition.after(resume.entry_id), None
