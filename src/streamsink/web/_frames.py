"""Server-sent-event frames of stream events, and ``FrameSource``: one fan-out subscription turned
into frames, with heartbeats, gap reports and the end after a run's last event."""

from __future__ import annotations

from collections import deque
from types import TracebackType
from typing import Any

import anyio
import attrs
import orjson

from .._envelope import relay_envelope
from .._events import EventType, StreamEvent
from .._exceptions import StreamsinkError
from .._subscriber import StreamSubscriber
from ..backend import Gap, StartPosition

__all__ = [
    "KEEPALIVE",
    "FrameSource",
    "comment_frame",
    "event_frame",
    "report_frame",
    "retry_frame",
]

KEEPALIVE = b": keep-alive\n\n"
_UNSAFE = ("\r", "\n", "\0")  # would end or corrupt a field line


def _field(value: str) -> str | None:
    """``value`` if it can stand on one field line, else None (the field is left out)."""
    return None if not value or any(c in value for c in _UNSAFE) else value


def retry_frame(milliseconds: int) -> bytes:
    """``retry: <ms>``: the reconnection delay the browser uses."""
    return b"retry: %d\n\n" % milliseconds


def comment_frame(text: str) -> bytes:
    """A comment line, ignored by ``EventSource`` (keeps a connection busy, or says why it ends)."""
    return f": {text.splitlines()[0] if text else ''}\n\n".encode()


def _data_lines(data: bytes) -> bytes:
    # SSE data cannot hold a raw line break: each line of the payload becomes its own `data:`
    # line, which the client joins with "\n". Envelopes as Go and streamsink write them are
    # one line (JSON escapes line breaks in strings), so they arrive byte-exact.
    if b"\n" not in data and b"\r" not in data:
        return b"data: " + data + b"\n"
    lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return b"".join(b"data: " + line + b"\n" for line in lines)


def report_frame(name: str, data: dict[str, Any]) -> bytes:
    """A named event without an id (so the client's ``lastEventId`` stays the last entry's),
    with JSON ``data``: the gateway's ``gap`` and ``epoch`` reports."""
    return b"event: " + name.encode() + b"\n" + _data_lines(orjson.dumps(data)) + b"\n"


def event_frame(event: StreamEvent, *, server_data: bool = False) -> bytes:
    """``id: <entry id>``, ``event: <type>``, ``data: <envelope>`` for a received event: the
    envelope as it was on the stream (``StreamEvent.source``), or as a relay writes it
    (:func:`~streamsink.relay_envelope`) for an event that has none. ``server_data`` False
    (the gateway's default) leaves an event's server-only ``server_data`` out: the envelope is
    then written again without it. A type or id that cannot stand on one line is left out (the
    client then sees a ``message`` event)."""
    data: bytes | None = None
    if event.server_data is not None and not server_data:
        data = relay_envelope(attrs.evolve(event, server_data=None))
    else:
        data = event.source
    if data is None:
        data = relay_envelope(event)
    parts: list[bytes] = []
    entry_id = _field(event.entry_id or "")
    if entry_id is not None:
        parts.append(b"id: " + entry_id.encode() + b"\n")
    kind = _field(event.type if isinstance(event.type, str) else "")
    if kind is not None:
        parts.append(b"event: " + kind.encode() + b"\n")
    parts.append(_data_lines(data))
    parts.append(b"\n")
    return b"".join(parts)


def gap_report(gap: Gap, before: str | None) -> dict[str, Any]:
    """The ``gap`` report's data: entries lost between ``after`` and ``before`` (``count`` None
    when the backend cannot tell how many)."""
    return {"count": gap.count, "after": gap.after, "before": gap.before or before}


class FrameSource:
    """One fan-out subscription of ``stream_id`` as SSE frames. ``async with`` opens it (the
    backend's reader is open once entered, so a bad start id fails there, before any frame);
    :meth:`next_frame` then gives frames until the stream ends.

    ``first``: frames handed out before any event (the retry hint, an epoch report).
    """

    def __init__(
        self,
        subscriber: StreamSubscriber,
        stream_id: str,
        start: StartPosition,
        *,
        heartbeat: float,
        end_on_run_end: bool,
        server_data: bool = False,
        run_id: str | None,
        first: list[bytes],
    ) -> None:
        self._subscription = subscriber.subscribe(stream_id, start=start)
        self._heartbeat = heartbeat
        self._end_on_run_end = end_on_run_end
        self._server_data = server_data
        self._run_id = run_id
        self._queued: deque[bytes] = deque(first)
        self._done = False
        #: why the source ended: "end" (stream ended), "run_end", "failed" (None while open)
        self.ended: str | None = None
        #: what ended the subscription when ``ended == "failed"``
        self.error: StreamsinkError | None = None

    async def __aenter__(self) -> FrameSource:
        await self._subscription.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._subscription.__aexit__(exc_type, exc, tb)

    async def next_frame(self) -> bytes | None:
        """The next frame: queued reports, then an event (preceded by a ``gap`` report when
        entries right before it were trimmed unread), or :data:`KEEPALIVE` after ``heartbeat``
        seconds without one; None once the stream ended (destroyed, the subscription failed, or
        after the run's ``run_stream_end``)."""
        if self._queued:
            return self._queued.popleft()
        if self._done:
            return None
        event: Any = None
        # Cancelling the wait loses nothing: a batch handed over meanwhile stays queued in the
        # subscription's read-ahead for the next call.
        with anyio.move_on_after(self._heartbeat):
            try:
                event = await self._subscription.__anext__()
            except StopAsyncIteration:
                self._finish("end")
                return None
            except StreamsinkError as exc:
                self.error = exc
                self._finish("failed")
                return None
        if event is None:
            return KEEPALIVE
        frame = event_frame(event, server_data=self._server_data)
        if (
            self._end_on_run_end
            and event.type == EventType.RUN_STREAM_END
            and (self._run_id is None or event.run_id == self._run_id)
        ):
            self._finish("run_end")
        gap = event.gap
        if gap is not None:
            self._queued.append(frame)
            return report_frame("gap", gap_report(gap, event.entry_id))
        return frame

    def _finish(self, why: str) -> None:
        self._done = True
        self.ended = why
