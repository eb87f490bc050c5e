r"""The ``streamsink`` command: list backends, play a demo run, tail a stream.

::

    streamsink backends                      # installed backends, one per line
    streamsink demo [--url URL]              # a simulated agent run, published and read back live
    streamsink tail STREAM [--url URL] [--from oldest|newest]

The URL defaults to ``$STREAMSINK_URL``, else ``memory://``. Expected failures (a bad URL, an
unknown scheme, an unreachable backend) print one line to stderr and exit with status 2. Output is
plain text; with the ``cli`` extra (``rich``) installed it is coloured on a terminal.

What it prints is safe to print: the user part of a URL (user name, password, token) is shown as
``***``, and control and format characters that come from entries (escape sequences, carriage
returns, bidi overrides) are shown escaped (``\x1b``, ``\r``, ``\u202e``), so an entry can
neither drive the terminal nor break the one-line-per-event layout. A closed stdout
(``streamsink demo | head -1``) ends a command quietly with status 141, as a shell reports for a
writer stopped by SIGPIPE; the demo first finishes publishing its run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import sys
import unicodedata
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

import anyio
import orjson
from anyio.abc import TaskStatus

from ._deadletter import DEAD_LETTER_EVENT, DeadLetter, decode_dead_letter
from ._delivery import Delivery
from ._events import Event, EventType, StreamEvent
from ._exceptions import BackendUnavailableError, DecodeError, StreamsinkError
from ._plugins import get_registry
from ._runtime import DEFAULT_URL, URL_ENV, connect
from ._streams import default_stream_id
from .backend import Backend, StartPosition
from .backend._url import redact_url
from .payloads import (
    AssistantReply,
    AwaitClarification,
    AwaitConfirmation,
    AwaitExternalTools,
    AwaitQuestions,
    ChildRunLinked,
    Payload,
    PlannerThought,
    PromptRendered,
    RawPayload,
    RunStreamEnd,
    SessionStreamStarted,
    ToolAuthorization,
    ToolCallArgsDelta,
    ToolEnd,
    ToolOutputDelta,
    ToolStart,
    ToolTelemetry,
    ToolUpdate,
    Usage,
    Workflow,
    typed_payload,
)

__all__ = ["main", "run_demo", "run_tail", "summarize"]

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran but did not get what it waited for (demo timeout)
EXIT_ERROR = 2  # bad usage, bad URL or options, unknown scheme, unreachable backend
EXIT_INTERRUPTED = 130
# 128 + SIGPIPE (13): what a shell reports for `yes | head -1`, so pipelines and `set -o pipefail`
# see the same status as for any Unix tool whose reader went away.
EXIT_BROKEN_PIPE = 141

DEMO_TIMEOUT = 10.0
DEMO_GROUP = "streamsink-demo"

_TYPE_WIDTH = len(EventType.ASSISTANT_REPLY)  # longer types overflow; most fit
_STYLES: dict[str, str] = {
    EventType.TOOL_START: "cyan",
    EventType.TOOL_END: "cyan",
    EventType.ASSISTANT_REPLY: "bold",
    EventType.PLANNER_THOUGHT: "dim",
    EventType.USAGE: "magenta",
    EventType.WORKFLOW: "green",
    EventType.RUN_STREAM_END: "green",
}


class CommandError(Exception):
    """A failure the command reports as one line on stderr, with an exit status."""

    def __init__(self, message: str, status: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.status = status


# -- safe text ----------------------------------------------------------------------------------

_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Control (C0, DEL, C1), format (bidi overrides and isolates, zero-width characters), surrogate
# and unassigned characters, and the line and paragraph separators: none prints as itself.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Cn", "Zl", "Zp"})


def _escape_char(char: str) -> str:
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape(text: str) -> str:
    r"""``text`` with every character a terminal would act on (or that would break a line)
    written as a Python-style escape: ``\x1b``, ``\r``, ``\n``, ``\x9b``, ``\u202e``.
    Everything else, non-ASCII letters and emoji included, is kept."""
    if text.isprintable():  # the usual case; isprintable() is False for every unsafe category
        return text
    return "".join(
        _escape_char(c) if unicodedata.category(c) in _UNSAFE_CATEGORIES else c for c in text
    )


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")


def safe_message(text: str) -> str:
    """One line for stderr from an error's text: URLs in it redacted (a second line of defence:
    streamsink's own messages already redact theirs), whitespace runs collapsed, the rest
    escaped."""
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group()), text)
    return escape(" ".join(text.split()))


def _warn(errors: TextIO | None, text: str) -> None:
    """A ``streamsink: warning:`` line; a closed stderr is no reason to stop."""
    with contextlib.suppress(BrokenPipeError):
        print(f"streamsink: warning: {safe_message(text)}", file=errors or sys.stderr, flush=True)


# -- output -------------------------------------------------------------------------------------


class Output(Protocol):
    """Where commands write: plain text, or colour through rich on a terminal.

    ``write`` never raises for a closed reader (a broken pipe): it sets ``broken`` and drops this
    and every later write, so a command can finish its work (the demo its run) or stop (tail).
    """

    @property
    def broken(self) -> bool: ...

    def write(self, text: str, style: str | None = None) -> None: ...


class PlainOutput:
    """Plain text to a stream (stdout by default), flushed at every write so output is live."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self.broken = False

    def write(self, text: str, style: str | None = None) -> None:
        if self.broken:
            return
        try:
            self._stream.write(text)
            self._stream.flush()
        except BrokenPipeError:
            self.broken = True


class RichOutput:
    """Coloured text through rich (no markup or highlighting: payload text is printed as is)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        from rich.console import Console

        self._console = Console(
            file=stream if stream is not None else sys.stdout,
            markup=False,
            highlight=False,
            emoji=False,
            soft_wrap=True,
            force_terminal=True,
        )
        self.broken = False

    def write(self, text: str, style: str | None = None) -> None:
        if self.broken:
            return
        try:
            self._console.print(text, style=style, end="")
            self._console.file.flush()
        except BrokenPipeError:
            self.broken = True


def make_output(color: str = "auto", stream: TextIO | None = None) -> Output:
    """``PlainOutput`` unless colour is asked for (``always``, or ``auto`` on a terminal without
    ``NO_COLOR``) and rich is importable."""
    target = stream if stream is not None else sys.stdout
    if color == "never" or (
        color == "auto" and (os.environ.get("NO_COLOR") or not _isatty(target))
    ):
        return PlainOutput(target)
    try:
        return RichOutput(target)
    except ImportError:
        return PlainOutput(target)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# -- event summaries ----------------------------------------------------------------------------


def _short(value: Any, limit: int = 60) -> str:
    """Compact one-line text of a value, cut to ``limit`` characters."""
    if isinstance(value, str):
        text = " ".join(value.split())
    else:
        try:
            text = orjson.dumps(value).decode()
        except TypeError:
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _duration(nanoseconds: int) -> str:
    ms = nanoseconds / 1e6
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def _tool(name: str, call: str) -> str:
    name = name or "tool"
    return f"{name} [{call}]" if call else name


def _summary_tool_end(p: ToolEnd) -> str:
    tool, took = _tool(p.tool_name, p.tool_call_id), _duration(p.duration)
    if p.error is not None:
        return f"{tool} failed after {took}: {_short(p.error.message)}"
    result = p.result_preview or ("" if p.result is None else _short(p.result))
    return f"{tool} ok in {took}" + (f": {_short(result)}" if result else "")


def _summary_usage(p: Usage) -> str:
    text = f"{p.model or 'model'}: {p.input_tokens} in / {p.output_tokens} out tokens"
    if p.total_tokens:
        text += f" ({p.total_tokens} total"
        text += f", {p.cache_read_tokens} from cache)" if p.cache_read_tokens else ")"
    return text


def _summary_workflow(p: Workflow) -> str:
    text = f"{p.name}: " if p.name else ""
    text += f"phase {p.phase or '?'}"
    if p.status:
        text += f", status {p.status}"
    if p.error:
        text += f": {_short(p.error)}"
    return text


def _payload_summary(p: Payload) -> str:
    """The line for a payload of its type's shape, from its typed fields."""
    match p:
        case AssistantReply():
            return p.text
        case PlannerThought():
            thought = p.note or p.text or ("(redacted thinking)" if p.redacted else "(thinking)")
            return _short(thought, 80)
        case PromptRendered():
            version = p.version or "?"
            return f"{p.prompt_id or '?'} {version if version[0] in 'vV' else 'v' + version}"
        case ToolStart():
            tool = _tool(p.tool_name, p.tool_call_id)
            if p.display_hint:
                return f"{tool} {_short(p.display_hint)}"
            return tool if p.payload is None else f"{tool} args={_short(p.payload)}"
        case ToolUpdate():
            return f"[{p.tool_call_id or '?'}] expects {p.expected_children_total} children"
        case ToolCallArgsDelta():
            return f"{_tool(p.tool_name, p.tool_call_id)} args += {_short(p.delta)}"
        case ToolOutputDelta():
            tool = _tool(p.tool_name, p.tool_call_id)
            return f"{tool} {p.stream or 'out'} += {_short(p.delta)}"
        case ToolEnd():
            return _summary_tool_end(p)
        case AwaitClarification():
            return f"asks: {_short(p.question)}"
        case AwaitConfirmation():
            tool = _tool(p.tool_name, p.tool_call_id)
            return f"{tool} needs confirmation: {_short(p.prompt)}"
        case AwaitQuestions():
            return f"{len(p.questions)} question(s) for the user"
        case AwaitExternalTools():
            return f"waits for {len(p.items)} external tool call(s)"
        case ToolAuthorization():
            verdict = "approved" if p.approved else "denied"
            by = f" by {p.approved_by}" if p.approved_by else ""
            return f"{_tool(p.tool_name, p.tool_call_id)} {verdict}{by}"
        case Usage():
            return _summary_usage(p)
        case Workflow():
            return _summary_workflow(p)
        case ChildRunLinked():
            tool = _tool(p.tool_name, p.tool_call_id)
            return f"{tool} started child run {p.child_run_id or '?'} ({p.child_agent_id or '?'})"
        case SessionStreamStarted():
            return "session started"
    return ""


def summarize(event: Event) -> str:
    """A short, human, one-line summary of an event, from its typed payload
    (:func:`~streamsink.typed_payload`); control and format characters in it are escaped (see
    :func:`escape`). A payload of the wrong shape is shown raw and marked ``(malformed: ...)``;
    one with keys its type does not have names them (``(+key)``)."""
    return escape(_summary(event))


def _summary(event: Event) -> str:
    if event.type == EventType.RUN_STREAM_END:
        text = f"run {event.run_id} ended"
    elif event.type == EventType.SESSION_STREAM_END:
        text = "session ended"
    elif event.payload is None and event.type != EventType.SESSION_STREAM_STARTED:
        text = ""
    else:
        typed = typed_payload(event)
        if isinstance(typed, RawPayload):
            text = "" if typed.value is None else _short(typed.value, 80)
            if typed.malformed:
                more = "; …" if len(typed.problems) > 1 else ""
                text += f" (malformed: {_short(typed.problems[0], 80)}{more})"
        else:
            text = _payload_summary(typed)
            # A reply's chunks print as one text; anything else shows keys from elsewhere.
            if typed.unknown_fields and not isinstance(typed, AssistantReply):
                text += f" (+{_short(', '.join(typed.unknown_fields), 40)})"
    server_data = getattr(event, "server_data", None)
    if server_data:
        text += f" (+server_data, {len(server_data)} B)"
    return text


# -- backends -----------------------------------------------------------------------------------


def cmd_backends(out: Output) -> int:
    """Print the installed backends: scheme, description, providing plugin."""
    backends = list(get_registry())
    if not backends:
        raise CommandError("no streamsink backend is installed")
    width = max(len(b.scheme) for b in backends) + 3
    desc_width = max(len(b.description) for b in backends)
    for backend in backends:
        out.write(f"{backend.scheme + '://':<{width}}", "bold")
        out.write(f"  {backend.description:<{desc_width}}  {backend.plugin}\n")
    return EXIT_OK


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
    if scope.cancelled_caught:
        if not opened:
            where = redact_url(target) if isinstance(target, str) else target.description
            raise timed_out(f"opening {where}")
        raise timed_out(f"waiting for run_stream_end ({len(seen)} of {len(events)} events seen)")
    return EXIT_OK


# -- tail ---------------------------------------------------------------------------------------


async def run_tail(
    target: str | Backend,
    stream_id: str,
    out: Output,
    *,
    start: StartPosition | None = None,
    limit: int | None = None,
    errors: TextIO | None = None,
) -> int:
    """Print the entries of ``stream_id`` as a fan-out reader (no group: nothing is acknowledged
    or left behind) until interrupted, until ``limit`` entries were printed, or until ``out`` is
    broken (its reader went away).

    One line per entry, every value from the entry escaped: events as summaries, dead letters
    (a ``:dlq`` stream) with their origin, group, consumer, attempts, reason and a payload
    preview. Entries that are neither get a warning on ``errors`` (default stderr) instead.

    :raises StreamsinkError: the backend could not be opened or used.
    """

    def on_error(error: StreamsinkError) -> None:
        _warn(errors, str(error))

    async with connect(target) as streams:
        subscriber = streams.new_subscriber(group=None, on_error=on_error)
        count = 0
        # Manual mode for what it hands over: the entry id with the event, and the raw payload of
        # an entry that is not an envelope, to read as a dead letter. Fan-out deliveries need no
        # settling.
        async with subscriber.subscribe_manual(stream_id, start=start) as deliveries:
            async for delivery in deliveries:
                if not _print_entry(out, delivery):
                    _warn(
                        errors,
                        f"undecodable entry {stream_id}/{delivery.entry_id}: "
                        f"{delivery.decode_error}",
                    )
                    continue
                count += 1
                if out.broken or (limit is not None and count >= limit):
                    break
    return EXIT_OK


def _stamp(when: datetime | None) -> str:
    return f"{when:%H:%M:%S.%f}"[:-3] if when else "--:--:--.---"


def _print_entry(out: Output, delivery: Delivery) -> bool:
    """Print one tail line for ``delivery``; False when it is neither an event nor a letter."""
    entry = escape(delivery.entry_id)
    event = delivery.event
    if event is not None:
        style = _STYLES.get(event.type)
        out.write(f"{_stamp(getattr(event, 'timestamp', None))}  {entry}  ", "dim")
        out.write(f"{escape(event.type):<{_TYPE_WIDTH}}  ", style)
        out.write(f"{escape(event.run_id)}  {summarize(event)}\n", style)
        return True
    try:
        letter = decode_dead_letter(delivery.raw_payload)
    except DecodeError:
        return False
    out.write(f"{_stamp(letter.dead_lettered_at)}  {entry}  ", "dim")
    out.write(f"{DEAD_LETTER_EVENT:<{_TYPE_WIDTH}}  ", "yellow")
    out.write(_letter_summary(letter) + "\n", "yellow")
    return True


def _letter_summary(letter: DeadLetter) -> str:
    """One escaped line about a dead letter: where it came from, who gave up on it after how many
    attempts and why, and the start of the original payload."""
    where = f"group {letter.group}" if letter.group else "no group"
    if letter.consumer:
        where += f", consumer {letter.consumer}"
    attempts = f"{letter.attempts} attempt{'' if letter.attempts == 1 else 's'}"
    if letter.payload is None:
        preview = "no payload"
    else:
        text = letter.payload.decode("utf-8", errors="replace")
        preview = f"payload {letter.event_name or '?'}: {_short(text, 80)}"
    return escape(
        f"{letter.origin_stream} {letter.entry_id} ({where}, {attempts}): {letter.reason}; "
        f"{preview}"
    )


# -- command line -------------------------------------------------------------------------------


def _default_url() -> str:
    return os.environ.get(URL_ENV) or DEFAULT_URL


def _shown_default_url() -> str:
    """The default URL as ``--help`` may show it: user part redacted, nothing unprintable, and
    ``%`` doubled (argparse %-formats help texts; URLs hold percent escapes)."""
    return escape(redact_url(_default_url())).replace("%", "%%")


def _number(
    parse: Callable[[str], float], kind: str, ok: Callable[[float], bool], wanted: str
) -> Callable[[str], float]:
    """An argparse ``type=``: ``parse`` the text, then require ``ok`` of the value."""

    def convert(text: str) -> float:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {kind}: {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {wanted}: {text!r}")
        return value

    return convert


_positive = _number(float, "a number", lambda v: v > 0, "positive")
_not_negative = _number(float, "a number", lambda v: v >= 0, "0 or more")
_count = _number(int, "an integer", lambda v: v >= 1, "at least 1")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamsink",
        description="Carry an agent runtime's events between processes, on any backend.",
        epilog=f"The backend URL defaults to ${URL_ENV}, else {DEFAULT_URL}.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="colour the output (needs the 'cli' extra; default: auto, on a terminal)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    commands.add_parser("backends", help="list the installed backends")

    url_help = f"backend URL (default: ${URL_ENV}, else {DEFAULT_URL}; now {_shown_default_url()})"
    demo = commands.add_parser(
        "demo", help="play a simulated agent run through a sink and print it live"
    )
    demo.add_argument("--url", default=None, help=url_help)
    demo.add_argument(
        "--timeout",
        type=_positive,
        default=DEMO_TIMEOUT,
        help=f"seconds to wait for the end of the run (default {DEMO_TIMEOUT:g})",
    )
    demo.add_argument(
        "--pace",
        type=_not_negative,
        default=1.0,
        help="scale the delays between events (0: no delays; default 1)",
    )
    demo.add_argument(
        "--keep", action="store_true", help="keep the demo stream in the backend afterwards"
    )

    tail = commands.add_parser("tail", help="print a stream's events as they arrive (Ctrl-C ends)")
    tail.add_argument("stream", metavar="STREAM", help="stream id, e.g. session/<session id>")
    tail.add_argument("--url", default=None, help=url_help)
    tail.add_argument(
        "--from",
        dest="start",
        choices=["oldest", "newest"],
        default="newest",
        help="start with the oldest entry still in the stream, or only new ones (default)",
    )
    tail.add_argument("--limit", type=_count, default=None, help="stop after N events")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``streamsink`` command; return the exit status.

    A closed stdout ends any command quietly with :data:`EXIT_BROKEN_PIPE`: no message, no
    traceback, and nothing from the interpreter's last flush at exit.
    """
    try:
        try:
            status = _run(argv)
        finally:
            # Here, inside the try, also when argparse exits after --help: a pipe closed
            # meanwhile shows now, not in the interpreter's flush at exit.
            sys.stdout.flush()
    except BrokenPipeError:
        status = EXIT_BROKEN_PIPE
    if status == EXIT_BROKEN_PIPE:
        _discard_stdout()
    return status


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        print(f"streamsink {version('streamsink')}")
        return EXIT_OK
    if args.command is None:
        parser.print_help()
        return EXIT_ERROR
    out = make_output(args.color)
    try:
        status = _dispatch(args, out)
    except KeyboardInterrupt:
        status = EXIT_INTERRUPTED
    except BaseException as exc:
        failure = _expected_failure(exc)
        if failure is None:
            raise
        message, status = failure
        out.write("")  # what is printed goes out before the error line (and a closed pipe shows)
        with contextlib.suppress(BrokenPipeError):  # nowhere left to say it
            print(f"streamsink: error: {safe_message(message)}", file=sys.stderr, flush=True)
    return EXIT_BROKEN_PIPE if out.broken else status


def _dispatch(args: argparse.Namespace, out: Output) -> int:
    if args.command == "backends":
        return cmd_backends(out)
    url = args.url or _default_url()
    if args.command == "demo":
        return anyio.run(
            lambda: run_demo(url, out, time_limit=args.timeout, pace=args.pace, keep=args.keep)
        )
    start = StartPosition.oldest() if args.start == "oldest" else StartPosition.newest()
    return anyio.run(lambda: run_tail(url, args.stream, out, start=start, limit=args.limit))


def _discard_stdout() -> None:
    """Point stdout's file descriptor at the null device, so that what is still buffered goes
    there when the interpreter flushes stdout at exit, instead of failing on the closed pipe
    ("Exception ignored ... BrokenPipeError"); the Python docs' recipe for SIGPIPE."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (captured, replaced)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _expected_failure(exc: BaseException) -> tuple[str, int] | None:
    """The one-line message and status for failures the user can act on; None for bugs.

    Task groups wrap errors in exception groups: the first expected leaf is reported.
    """
    if isinstance(exc, BaseExceptionGroup):
        for leaf in exc.exceptions:
            found = _expected_failure(leaf)
            if found is not None:
                return found
        return None
    if isinstance(exc, CommandError):
        return str(exc), exc.status
    if isinstance(exc, StreamsinkError | OSError):
        text = " ".join(str(exc).split()) or type(exc).__name__
        return text, EXIT_ERROR
    return None
