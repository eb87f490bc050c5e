"""One SSE response's stream, shared by the gateway and :func:`sse_frames`: resume resolved,
retry hint and epoch report first, then the subscription's frames."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Literal

from .._exceptions import ConfigurationError, EntriesSkippedError, StreamsinkError
from .._options import SubscriberOptions
from .._single_flight import SingleFlight
from .._streams import validate_stream_id
from .._subscriber import StreamSubscriber
from ..backend import Backend
from ._frames import FrameSource, report_frame, retry_frame
from ._options import GatewayOptions
from ._resume import (
    ResolvedResume,
    Resume,
    ResumeError,
    plan_resume,
    resolve_resume,
    resume_error,
)

__all__ = ["fan_out_subscriber", "open_source", "sse_frames"]

log = logging.getLogger("streamsink.web")
_RUN_ID_MAX = 512


def _report(error: StreamsinkError) -> None:
    # Gaps reach the client as `gap` reports; the rest (undecodable entries, retries while the
    # backend is unreachable) is for the operator. Messages hold no payload and no secret.
    if isinstance(error, EntriesSkippedError):
        log.debug("%s", error)
    else:
        log.warning("%s", error)


def fan_out_subscriber(backend: Backend, options: GatewayOptions) -> StreamSubscriber:
    """The subscriber whose fan-out readers the responses are."""
    return StreamSubscriber(
        backend, SubscriberOptions(group=None, buffer=options.buffer, on_error=_report)
    )


def check_run_id(run_id: str | None) -> str | None:
    """``run_id`` if usable as a filter. :raises ResumeError: empty or too long."""
    if run_id is not None and not 0 < len(run_id) <= _RUN_ID_MAX:
        raise ResumeError("run_id", f"expected a run id of 1 to {_RUN_ID_MAX} characters")
    return run_id


async def open_source(
    subscriber: StreamSubscriber,
    stream_id: str,
    resume: Resume,
    *,
    run_id: str | None,
    options: GatewayOptions,
    resumes: SingleFlight[tuple[str, str], ResolvedResume] | None = None,
) -> FrameSource:
    """A :class:`FrameSource` already entered (its reader open): close it with ``__aexit__``.
    ``resumes`` shares the backend's answer among concurrent resumes of one stream after one id.

    :raises ResumeError: the backend refuses the resume id.
    :raises StreamsinkError: the backend cannot be reached, or the subscriber is closed.
    """
    backend = subscriber.backend
    if resumes is None or resume.entry_id is None:
        start, epoch = await resolve_resume(backend, stream_id, resume)
    else:
        start, epoch = await resumes.run(
            (stream_id, resume.entry_id), lambda: resolve_resume(backend, stream_id, resume)
        )
    first = [] if options.retry_ms is None else [retry_frame(options.retry_ms)]
    if epoch is not None:
        first.append(report_frame("epoch", epoch))
    source = FrameSource(
        subscriber,
        stream_id,
        start,
        heartbeat=options.heartbeat,
        end_on_run_end=options.end_on_run_end,
        server_data=options.send_server_data,
        run_id=run_id,
        first=first,
    )
    try:
        await source.__aenter__()
    except ConfigurationError as exc:
        if resume.entry_id is not None and not isinstance(exc, ResumeError):
            raise resume_error(resume, exc) from None
        raise
    return source


async def sse_frames(
    backend_or_subscriber: Backend | StreamSubscriber,
    stream_id: str,
    *,
    last_event_id: str | None = None,
    after: str | None = None,
    run_id: str | None = None,
    start: Literal["newest", "oldest"] = "newest",
    options: GatewayOptions = GatewayOptions(),  # noqa: B008 - frozen, so one default is safe
) -> AsyncIterator[bytes]:
    """The SSE frames of ``stream_id``, for an application that routes requests itself (e.g. a
    ``StreamingResponse(sse_frames(...), media_type="text/event-stream")``): the frames the
    gateway sends, ``retry:`` hint first, heartbeats, ``gap``/``epoch`` reports, until the
    stream ends (or its run ends, with ``options.end_on_run_end``).

    Resume after ``last_event_id`` (pass the request's ``Last-Event-ID`` header here), else
    ``after``, else start at ``start``. Given a backend, one fan-out reader is opened on it and
    closed at the end; given a :class:`~streamsink.StreamSubscriber`, it must be a fan-out one
    (``group=None``). Iterate it to the end or close it (``contextlib.aclosing``), in one task.

    :raises ConfigurationError: an invalid stream id, or a subscriber with a group (before any
        frame).
    :raises ResumeError: a malformed resume id, refused by the backend (before any frame).
    """
    validate_stream_id(stream_id)
    resume = plan_resume(
        last_event_id=last_event_id,
        after=after,
        start_from=start,
        max_length=options.max_entry_id_length,
    )
    check_run_id(run_id)
    if isinstance(backend_or_subscriber, StreamSubscriber):
        subscriber, owned = backend_or_subscriber, False
        if subscriber.options.group is not None:
            raise ConfigurationError(
                f"sse_frames needs a fan-out subscriber (SubscriberOptions(group=None)); this "
                f"one reads in group {subscriber.options.group!r}, and would split the stream "
                "between its clients"
            )
    else:
        subscriber, owned = fan_out_subscriber(backend_or_subscriber, options), True
    try:
        source = await open_source(subscriber, stream_id, resume, run_id=run_id, options=options)
        try:
            while (frame := await source.next_frame()) is not None:
                yield frame
        finally:
            await source.__aexit__(None, None, None)
    finally:
        if owned:
            await subscriber.aclose()
