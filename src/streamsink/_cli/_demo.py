"""``streamsink demo``: a simulated agent run, published and read back live."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any, TextIO

import anyio
from anyio.abc import TaskStatus

from .._events import EventType, StreamEvent
from .._exceptions import BackendUnavailableError, StreamsinkError
from .._runtime import connect
from .._streams import default_stream_id
from ..backend import Backend, StartPosition
from ..backend._url import redact_url
from ..payloads import (
    AssistantReply,
    Payload,
    RunStreamEnd,
    ToolEnd,
    ToolStart,
    ToolTelemetry,
    Usage,
    Workflow,
)
from ._exits import (
    EXIT_FAILED,
    EXIT_OK,
    CommandError,
)
from ._output import _STYLES, _TYPE_WIDTH, Output
from ._summary import (
    summarize,
)
from ._text import (
    _warn,
    escape,
    safe_message,
)

DEMO_TIMEOUT = 10.0
DEMO_GROUP = "streamsink-demo"


# -- demo ---------------------------------------------------------------------------------------


def demo_events(run_id: str, session_id: str) -> list[tuple[float, StreamEvent]]:
    """The demo run: (seconds to wait before sending, event) pairs, built from the payload
    classes, so their payloads are the JSON loom writes."""
    call = f"toolu_{secrets.token_hex(6)}"
    reply = [
        "Consumer groups split a stream ",
        "between their consumers; ",
        "an entry that is not acknowledged ",
        "within the grace period ",
        "is redelivered to another consumer.",
    ]
    events: list[tuple[float, StreamEvent]] = []

    def add(delay: float, payload: Payload, server_data: Any = None) -> None:
        key = f"{run_id}/{len(events) + 1}"
        events.append((delay, payload.to_event(run_id, session_id, key, server_data=server_data)))

    add(
        0.0,
        ToolStart(
            tool_call_id=call,
            tool_name="docs.search",
            payload={"query": "consumer group redelivery", "limit": 3},
            display_hint="Searching the docs for “consumer group redelivery”",
        ),
    )
    add(
        0.08,
        ToolEnd(
            tool_call_id=call,
            tool_name="docs.search",
            result={
                "hits": [
                    {"title": "Consumer groups", "path": "docs/semantics.md#groups"},
                    {"title": "Redelivery", "path": "docs/semantics.md#redelivery"},
                    {"title": "Dead letters", "path": "docs/semantics.md#dead-letters"},
                ]
            },
            result_preview="3 hits: Consumer groups, Redelivery, Dead letters",
            duration=84_210_000,  # a Go time.Duration: nanoseconds
            telemetry=ToolTelemetry(duration_ms=84),
        ),
        server_data={"ui": {"kind": "search_results", "count": 3}},
    )
    for i, chunk in enumerate(reply):
        add(0.06 if i else 0.04, AssistantReply(text=chunk))
    add(
        0.03,
        Usage(
            model="claude-sonnet-4-5",
            model_class="default",
            input_tokens=1834,
            output_tokens=41,
            total_tokens=1875,
            cache_read_tokens=1536,
        ),
    )
    add(0.01, Workflow(name="chat", phase="completed", status="success"))
    add(0.0, RunStreamEnd())
    return events


async def run_demo(
    target: str | Backend,
    out: Output,
    *,
    time_limit: float = DEMO_TIMEOUT,
    pace: float = 1.0,
    keep: bool = False,
    errors: TextIO | None = None,
) -> int:
    """Play :func:`demo_events` through a sink while a subscriber prints them live.

    ``pace`` scales the delays between events (0 sends them back to back). The subscriber joins
    before anything is sent, from the oldest entry of a fresh stream, so nothing is missed. The
    demo stream is destroyed at the end unless ``keep``. A broken ``out`` (its reader went away)
    does not stop the run: it is published to the end all the same, and then cleaned up.

    :raises CommandError: no ``run_stream_end`` within ``time_limit`` seconds (status 1).
    :raises StreamsinkError: the backend could not be opened or used.
    """
    token = secrets.token_hex(4)
    run_id, session_id = f"run-{token}", f"demo-{token}"
    events = demo_events(run_id, session_id)
    stream_id = default_stream_id(events[0][1])
    problems: list[StreamsinkError] = []

    def on_error(error: StreamsinkError) -> None:
        problems.append(error)
        # Retries while the backend is unreachable are not worth a line each: a failure names the
        # last one. Anything else (an undecodable entry, a dead letter) is.
        if not isinstance(error, BackendUnavailableError):
            _warn(errors, str(error))

    def timed_out(what: str) -> CommandError:
        message = f"demo timed out after {time_limit:g} s {what}"
        if problems:
            message += f" (last error: {problems[-1]})"
        return CommandError(message, EXIT_FAILED)

    seen: list[str] = []
    opened = False
    with anyio.move_on_after(time_limit) as scope:
        async with connect(target) as streams:
            opened = True
            description = safe_message(streams.backend.description)
            out.write(
                f"streamsink demo on {description}: stream {stream_id}, run {run_id}\n", "bold"
            )
            subscriber = streams.new_subscriber(
                group=DEMO_GROUP,
                start=StartPosition.oldest(),
                on_error=on_error,
                # An unreachable backend fails the demo quickly, with its own error, not a timeout.
                reconnect_timeout=max(0.5, min(3.0, time_limit / 3)),
            )
            t0 = datetime.now(UTC)

            async def consume(*, task_status: TaskStatus[None]) -> None:
                async with subscriber.subscribe(stream_id) as subscription:
                    task_status.started()  # subscribed: the producer may start
                    in_reply = False
                    async for event in subscription:
                        seen.append(event.type)
                        stamp = event.timestamp if isinstance(event, StreamEvent) else None
                        offset = ((stamp or datetime.now(UTC)) - t0).total_seconds()
                        style = _STYLES.get(event.type)
                        if event.type == EventType.ASSISTANT_REPLY and in_reply:
                            out.write(summarize(event), style)  # the next chunk, inline
                            continue
                        if in_reply:
                            out.write("\n")
                        in_reply = event.type == EventType.ASSISTANT_REPLY
                        out.write(f"{offset:+8.3f}s  ", "dim")
                        out.write(f"{escape(event.type):<{_TYPE_WIDTH}}  ", style)
                        out.write(summarize(event) + ("" if in_reply else "\n"), style)
                        if event.type == EventType.RUN_STREAM_END and event.run_id == run_id:
                            break

            async def produce() -> None:
                for delay, event in events:
                    if delay and pace:
                        await anyio.sleep(delay * pace)
                    await streams.sink.send(event)

            async def clean_up(*, quiet: bool) -> None:
                if keep:
                    return
                with anyio.CancelScope(shield=True), anyio.move_on_after(2.0):
                    try:
                        await streams.backend.destroy(stream_id)
                    except StreamsinkError as exc:
                        if not quiet:
                            on_error(exc)

            try:
                async with anyio.create_task_group() as tg:
                    await tg.start(consume)
                    tg.start_soon(produce)
            except BaseException:
                await clean_up(quiet=True)
                raise
            await clean_up(quiet=False)
            elapsed = (datetime.now(UTC) - t0).total_seconds()
            out.write(f"done: {len(seen)} events in {elapsed:.2f} s\n", "bold")
            out.write("watch one in a browser: streamsink serve --demo (needs the web extra)\n")
    if scope.cancelled_caught:
        if not opened:
            where = redact_url(target) if isinstance(target, str) else target.description
            raise timed_out(f"opening {where}")
        raise timed_out(f"waiting for run_stream_end ({len(seen)} of {len(events)} events seen)")
    return EXIT_OK
