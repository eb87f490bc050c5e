"""The ``streamsink`` command: ``backends``, ``demo``, ``tail`` and its error reporting."""

from __future__ import annotations

import io
import os
import re
import secrets
import subprocess
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import attrs
import orjson
import pytest

import streamsink
from streamsink import EventType, StartPosition, StreamEvent, StreamsinkError
from streamsink._cli import (
    CommandError,
    PlainOutput,
    demo_events,
    main,
    make_output,
    run_demo,
    run_tail,
    summarize,
)
from streamsink.backend import Backend, Entry, Record
from streamsink_memory import get_broker

DEMO_TYPES = ["tool_start", "tool_end", "assistant_reply", "usage", "workflow", "run_stream_end"]
SCRIPT = Path(sys.executable).parent / "streamsink"


@pytest.fixture(autouse=True)
def _no_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default URL is memory://, whatever the developer's shell exports."""
    monkeypatch.delenv("STREAMSINK_URL", raising=False)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSINK_")}
    env.update(extra)
    return env


def assert_in_order(text: str, words: Sequence[str]) -> None:
    """Each word appears in ``text``, each after the previous one."""
    position = 0
    for word in words:
        found = text.find(word, position)
        assert found >= 0, f"{word!r} missing (or out of order) in:\n{text}"
        position = found + len(word)


def assert_demo_transcript(out: str) -> None:
    lines = out.splitlines()
    assert lines[0].startswith("streamsink demo on memory://")
    # one line per event type: the reply's chunks stream onto a single line
    typed = [line.split()[1] for line in lines[1:-2]]
    assert typed == DEMO_TYPES
    assert lines[-1] == "watch one in a browser: streamsink serve --demo (needs the web extra)"
    assert_in_order(out, [*DEMO_TYPES, "done: 10 events"])
    assert "docs.search" in out
    assert "ok in 84 ms" in out
    assert "server_data" in out
    assert "is redelivered to another consumer." in out
    assert "1834 in / 41 out tokens" in out
    assert "phase completed, status success" in out


# -- backends -----------------------------------------------------------------------------------


def test_backends_lists_memory_and_redis(capsys: pytest.CaptureFixture[str]) -> None:
    """``streamsink backends`` prints one line per scheme, first-party ones included."""
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    schemes = [line.split()[0] for line in out.splitlines()]
    for scheme in ("memory://", "redis://", "fakeredis://"):
        assert scheme in schemes
    memory_line = next(line for line in out.splitlines() if line.startswith("memory://"))
    assert "plugin 'memory'" in memory_line


# -- demo ---------------------------------------------------------------------------------------


def test_demo_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    """``main(["demo"])`` exits 0 after printing every event type of the run, in order."""
    assert main(["demo", "--pace", "0.1"]) == 0
    captured = capsys.readouterr()
    assert_demo_transcript(captured.out)
    assert captured.err == ""


def test_demo_console_script() -> None:
    """The installed ``streamsink`` script plays the demo and exits 0."""
    assert SCRIPT.exists(), f"console script not installed next to {sys.executable}"
    result = subprocess.run(
        [str(SCRIPT), "demo"],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert_demo_transcript(result.stdout)
    assert result.stderr == ""


def test_python_dash_m_streamsink() -> None:
    """``python -m streamsink`` is the same command."""
    result = subprocess.run(
        [sys.executable, "-m", "streamsink", "--version"],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == f"streamsink {streamsink.__version__}"


def test_demo_on_fakeredis(capsys: pytest.CaptureFixture[str]) -> None:
    """The demo runs unchanged on another backend chosen by URL."""
    pytest.importorskip("fakeredis")
    assert main(["demo", "--url", "fakeredis://cli-demo", "--pace", "0"]) == 0
    out = capsys.readouterr().out
    assert_in_order(out, [*DEMO_TYPES, "done: 10 events"])


def test_demo_takes_the_url_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --url the demo uses $STREAMSINK_URL."""
    monkeypatch.setenv("STREAMSINK_URL", "memory://from-env")
    assert main(["demo", "--pace", "0"]) == 0
    assert capsys.readouterr().out.startswith("streamsink demo on memory://from-env")


@pytest.mark.anyio
async def test_run_demo_on_both_runtimes() -> None:
    """The demo coroutine works under asyncio and trio alike."""
    out = io.StringIO()
    backend = await streamsink.open_backend("memory://cli-runtimes")
    try:
        assert await run_demo(backend, PlainOutput(out), pace=0) == 0
    finally:
        await backend.aclose()
    assert_demo_transcript(out.getvalue())


class _LosesRunEnd:
    """A backend that silently drops ``run_stream_end`` entries (ids still returned)."""

    def __init__(self, inner: Backend) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def append(self, entries: Sequence[Entry]) -> list[str]:
        kept = [e for e in entries if e.name != EventType.RUN_STREAM_END]
        ids = iter(await self._inner.append(kept) if kept else [])
        return [next(ids) if e.name != EventType.RUN_STREAM_END else "0-0" for e in entries]


@pytest.mark.anyio
async def test_demo_times_out_with_a_clear_message() -> None:
    """When run_stream_end never arrives, the demo gives up after its time limit with status 1."""
    backend = await streamsink.open_backend("memory://cli-lossy")
    out = io.StringIO()
    try:
        with pytest.raises(CommandError, match=r"timed out after 0\.8 s") as caught:
            await run_demo(_LosesRunEnd(backend), PlainOutput(out), time_limit=0.8, pace=0)
    finally:
        await backend.aclose()
    assert caught.value.status == 1
    assert "9 of 10 events seen" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("nonsense", "has no scheme"),
        ("memroy://", "did you mean 'memory'"),
        ("amqp://localhost:5672", "no streamsink backend for scheme 'amqp'"),
        ("memory://?maxlen=lots", "maxlen"),
        ("memory://?colour=blue", "accepted: maxlen"),
        ("redis://localhost:notaport/0", "bad port"),
    ],
)
def test_demo_bad_url_exits_2_with_one_line(
    url: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad URL, an unknown scheme or bad options print one line on stderr and exit 2."""
    assert main(["demo", "--url", url]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("streamsink: error: ")
    assert expected in captured.err


def test_demo_unreachable_backend_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A Redis server that is not there fails the demo with one line and status 2."""
    pytest.importorskip("redis")
    url = "redis://127.0.0.1:1/0?socket_connect_timeout=0.5"
    status = main(["demo", "--url", url, "--timeout", "8"])
    captured = capsys.readouterr()
    assert status == 2, captured
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("streamsink: error: ")
    assert "Traceback" not in captured.err


def test_unknown_scheme_via_console_script() -> None:
    """The installed script reports an unknown scheme without a traceback."""
    result = subprocess.run(
        [str(SCRIPT), "demo", "--url", "memroy://"],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "streamsink: error: no streamsink backend for scheme 'memroy'; did you mean 'memory'? "
        + result.stderr.split("? ", 1)[1].strip()
    ]
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """argparse errors (an unknown command, a bad option value) exit 2."""
    with pytest.raises(SystemExit) as caught:
        main(["demo", "--timeout", "-1"])
    assert caught.value.code == 2
    assert "must be positive" in capsys.readouterr().err
    assert main([]) == 2


# -- tail ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_tail_prints_events_from_the_oldest() -> None:
    """``tail --from oldest`` prints what is already in the stream, one line per event."""
    backend = await streamsink.open_backend("memory://cli-tail")
    out = io.StringIO()
    try:
        async with streamsink.connect(backend) as streams:
            await streams.sink.send(
                StreamEvent("tool_start", "r-1", "t", payload={"tool_name": "x"})
            )
            await streams.sink.send(StreamEvent("run_stream_end", "r-1", "t"))
        status = await run_tail(
            backend, "session/t", PlainOutput(out), start=StartPosition.oldest(), limit=2
        )
    finally:
        await backend.aclose()
    assert status == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "tool_start" in lines[0]
    assert "run r-1 ended" in lines[1]


def test_tail_unknown_scheme_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """``tail`` reports a bad URL like ``demo`` does."""
    assert main(["tail", "session/x", "--url", "memroy://"]) == 2
    assert "did you mean 'memory'" in capsys.readouterr().err


# -- summaries ----------------------------------------------------------------------------------


SUMMARIES: list[tuple[str, object, str]] = [
    ("assistant_reply", {"text": "Hello, "}, "Hello, "),
    ("planner_thought", {"note": "thinking  about\nit"}, "thinking about it"),
    ("planner_thought", {"redacted": "c2VjcmV0", "final": True}, "(redacted thinking)"),
    (
        "prompt_rendered",
        {"prompt_id": "agent.system", "version": "v2", "scope": {}},
        "agent.system v2",
    ),
    ("prompt_rendered", {"prompt_id": "agent.system", "version": "3"}, "agent.system v3"),
    (
        "tool_start",
        {"tool_call_id": "c1", "tool_name": "t", "display_hint": "Looking"},
        "t [c1] Looking",
    ),
    ("tool_start", {"tool_name": "t", "payload": {"q": 1}}, 't args={"q":1}'),
    ("tool_start", None, ""),
    (
        "tool_update",
        {"tool_call_id": "c1", "expected_children_total": 3},
        "[c1] expects 3 children",
    ),
    (
        "tool_call_args_delta",
        {"tool_call_id": "c1", "tool_name": "t", "delta": '{"q":'},
        't [c1] args += {"q":',
    ),
    (
        "tool_output_delta",
        {"tool_name": "sh", "stream": "stderr", "delta": "oops"},
        "sh stderr += oops",
    ),
    (
        "tool_end",
        {
            "tool_call_id": "c1",
            "tool_name": "t",
            "duration": 1_500_000,
            "error": {"Message": "boom"},
        },
        "t [c1] failed after 2 ms: boom",
    ),
    (
        "tool_end",
        {"tool_name": "t", "duration": 12_300_000_000, "result": {"n": 1}},
        't ok in 12.3 s: {"n":1}',
    ),
    # A shape loom never writes: Go's zero values, and the keys it does not know, named.
    ("tool_end", {"status": "ok"}, "tool ok in 0 ms (+status)"),
    # The wrong shape: shown raw, and flagged.
    (
        "tool_end",
        {"tool_name": "t", "duration": "84ms"},
        '{"tool_name":"t","duration":"84ms"} (malformed: duration: expected an integer, got a string)',
    ),
    ("await_clarification", {"id": "a", "question": "Which  one?"}, "asks: Which one?"),
    (
        "await_confirmation",
        {"id": "a", "prompt": "Delete it?", "tool_name": "rm", "tool_call_id": "c2"},
        "rm [c2] needs confirmation: Delete it?",
    ),
    (
        "await_questions",
        {"id": "a", "questions": [{"id": "q1"}, {"id": "q2"}]},
        "2 question(s) for the user",
    ),
    (
        "await_external_tools",
        {"id": "a", "items": [{"tool_name": "x"}]},
        "waits for 1 external tool call(s)",
    ),
    ("tool_authorization", {"tool_name": "rm", "approved": False}, "rm denied"),
    (
        "tool_authorization",
        {"tool_name": "rm", "approved": True, "approved_by": "user:ada"},
        "rm approved by user:ada",
    ),
    (
        "usage",
        {
            "Model": "m",
            "InputTokens": 10,
            "OutputTokens": 2,
            "TotalTokens": 12,
            "CacheReadTokens": 8,
        },
        "m: 10 in / 2 out tokens (12 total, 8 from cache)",
    ),
    ("usage", "not a dict", "not a dict (malformed: payload: expected an object, got a string)"),
    ("workflow", {"phase": "running", "retryable": False}, "phase running"),
    (
        "workflow",
        {
            "name": "chat",
            "phase": "failed",
            "status": "failed",
            "error": "rate limited",
            "retryable": True,
        },
        "chat: phase failed, status failed: rate limited",
    ),
    (
        "child_run_linked",
        {
            "tool_name": "ada",
            "tool_call_id": "c3",
            "child_run_id": "r2",
            "child_agent_id": "svc.ada",
        },
        "ada [c3] started child run r2 (svc.ada)",
    ),
    ("session_stream_started", {}, "session started"),
    ("session_stream_end", None, "session ended"),
    ("run_stream_end", {}, "run r ended"),
    ("custom_type", {"a": 1}, '{"a":1}'),
]


@pytest.mark.parametrize(("kind", "payload", "expected"), SUMMARIES)
def test_summaries(kind: str, payload: object, expected: str) -> None:
    """Every payload shape gets a short summary, unknown or malformed ones included."""
    assert summarize(StreamEvent(kind, "r", "s", payload=payload)) == expected


def test_every_event_type_has_a_summary_case() -> None:
    """The cases above cover each of the 19 event types."""
    assert set(EventType) <= {kind for kind, _, _ in SUMMARIES}


# -- colour -------------------------------------------------------------------------------------


def test_plain_output_without_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the ``cli`` extra, even ``--color always`` falls back to plain text."""
    monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setitem(sys.modules, "rich.console", None)
    assert isinstance(make_output("always", io.StringIO()), PlainOutput)


def test_colour_only_when_asked_or_on_a_terminal() -> None:
    """``auto`` gives plain text off a terminal; ``always`` colours through rich."""
    pytest.importorskip("rich")
    assert isinstance(make_output("auto", io.StringIO()), PlainOutput)
    assert isinstance(make_output("never", io.StringIO()), PlainOutput)
    stream = io.StringIO()
    make_output("always", stream).write("[not markup] tool_end\n", "cyan")
    assert "\x1b[" in stream.getvalue()
    assert "[not markup] tool_end" in stream.getvalue()


def test_help_survives_a_percent_encoded_url(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--help shows a $STREAMSINK_URL holding percent escapes (argparse %-formats help texts)."""
    monkeypatch.setenv("STREAMSINK_URL", "redis://h/0?key_prefix=app%3Astream%3A")
    for command in ("demo", "tail"):
        with pytest.raises(SystemExit) as caught:
            main([command, "--help"])
        assert caught.value.code == 0
        assert "redis://h/0?key_prefix=app%3Astream%3A" in capsys.readouterr().out


# -- hostile entries ------------------------------------------------------------------------------

# What a producer could put in an entry to take over the operator's terminal: set the window
# title, clear the screen, print a fake error line, move the cursor (C1 CSI), reorder text.
HOSTILE = [
    "\x1b]0;pwned\x07",
    "\x1b[2J\x1b[H",
    "\r\nstreamsink: error: fake\n",
    "\x9b31m",
    "\x7f\x00\x08\t",
    "\u202egnp.exe",
    "\u2066isolated\u2069",
    "\u2028line\u2029",
]
ESCAPED = ["\\x1b", "\\x07", "\\r", "\\n", "\\x9b", "\\x7f", "\\x00", "\\t", "\\u202e", "\\u2066"]
_RICH_STYLE = re.compile(r"\x1b\[[0-9;]*m")


def unsafe_characters(text: str) -> list[str]:
    """Control, format and line-separator characters in ``text``, except our own newlines."""
    return [c for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]


def hostile(i: int) -> str:
    return f"h{i}" + "".join(HOSTILE) + f"end{i}"


def hostile_envelopes(session: str) -> list[bytes]:
    """Envelopes written by hand, each field of the printed ones hostile."""
    stamp = "2026-01-02T03:04:05.678Z"

    def envelope(kind: str, run_id: str, payload: object, **extra: object) -> bytes:
        doc = {"type": kind, "run_id": run_id, "session_id": session, "event_key": "k"}
        doc.update(timestamp=stamp, payload=payload, **extra)
        return orjson.dumps(doc)

    return [
        envelope("assistant_reply", hostile(0), {"text": hostile(1)}),
        envelope(hostile(2), "run-1", {"anything": hostile(3)}),
        envelope("tool_start", "run-1", {"tool_name": hostile(4), "display_hint": hostile(5)}),
        envelope(
            "tool_end",
            "run-1",
            {"tool_call_id": hostile(6), "error": {"Message": hostile(7)}},
            server_data={"html": hostile(8)},
        ),
        envelope("workflow", "run-1", {"name": hostile(9), "phase": hostile(10)}),
    ]


def assert_safe_lines(text: str, lines: int) -> None:
    """Exactly ``lines`` lines, none holding a control or format character, every hostile
    sequence shown escaped instead."""
    assert text.count("\n") == lines, text
    assert unsafe_characters(text) == [], text
    for escaped in ESCAPED:
        assert escaped in text, f"{escaped} missing in:\n{text}"


@pytest.mark.anyio
@pytest.mark.parametrize("color", ["never", "always"])
async def test_tail_escapes_control_characters(color: str) -> None:
    """tail shows hostile run ids, types and texts escaped, one line per entry, in plain text and
    through rich alike."""
    if color == "always":
        pytest.importorskip("rich")
    backend = await streamsink.open_backend(f"memory://cli-hostile-{secrets.token_hex(4)}")
    out = io.StringIO()
    try:
        entries = hostile_envelopes("hostile")
        await backend.append([Entry("session/hostile", "event", p) for p in entries])
        status = await run_tail(
            backend,
            "session/hostile",
            make_output(color, out),
            start=StartPosition.oldest(),
            limit=len(entries),
        )
    finally:
        await backend.aclose()
    assert status == 0
    assert_safe_lines(_RICH_STYLE.sub("", out.getvalue()), len(entries))


class _HostileIds:
    """A backend whose fan-out readers report hostile entry ids (a third-party backend could)."""

    def __init__(self, inner: Backend) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def open_reader(self, stream_id: str, start: StartPosition) -> Any:
        reader = await self._inner.open_reader(stream_id, start)

        class Reader:
            async def read(self, count: int, block: float) -> list[Record]:
                records = await reader.read(count, block)
                return [Record(hostile(9) + r.entry_id, r.name, r.payload) for r in records]

            async def aclose(self) -> None:
                await reader.aclose()

        return Reader()


@pytest.mark.anyio
async def test_tail_escapes_hostile_entry_ids() -> None:
    """Entry ids are printed escaped too."""
    backend = await streamsink.open_backend(f"memory://cli-ids-{secrets.token_hex(4)}")
    out = io.StringIO()
    try:
        async with streamsink.connect(backend) as streams:
            await streams.sink.send(StreamEvent("tool_start", "r-1", "ids"))
        await run_tail(
            _HostileIds(backend),  # type: ignore[arg-type]
            "session/ids",
            PlainOutput(out),
            start=StartPosition.oldest(),
            limit=1,
        )
    finally:
        await backend.aclose()
    assert_safe_lines(out.getvalue(), 1)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_tail_escapes_entries_from_a_raw_redis_client(redis_url: str) -> None:
    """Entries XADDed by another client, hostile in every field tail prints, on a real Redis."""
    pytest.importorskip("redis")
    import redis.asyncio as aioredis

    stream = f"session/hostile-{secrets.token_hex(4)}"
    entries = hostile_envelopes("hostile")
    client = aioredis.Redis.from_url(redis_url)
    try:
        for payload in entries:
            await client.xadd(f"pulse:stream:{stream}", {"n": "event", "p": payload})
    finally:
        await client.aclose()
    out = io.StringIO()
    status = await run_tail(
        redis_url, stream, PlainOutput(out), start=StartPosition.oldest(), limit=len(entries)
    )
    assert status == 0
    assert_safe_lines(out.getvalue(), len(entries))


@pytest.mark.anyio
async def test_demo_escapes_control_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo prints what it reads back through the same escaping."""
    from streamsink._cli import _demo

    original = _demo.demo_events

    def hostile_demo(run_id: str, session_id: str) -> list[tuple[float, StreamEvent]]:
        events = original(run_id, session_id)
        for i, (delay, event) in enumerate(events):
            if event.type == EventType.ASSISTANT_REPLY:
                events[i] = (delay, attrs.evolve(event, payload={"text": hostile(i)}))
        return events

    monkeypatch.setattr(_demo, "demo_events", hostile_demo)
    out = io.StringIO()
    backend = await streamsink.open_backend("memory://cli-hostile-demo")
    try:
        assert await run_demo(backend, PlainOutput(out), pace=0) == 0
    finally:
        await backend.aclose()
    text = out.getvalue()
    # the header, one line per type, "done", the browser hint
    assert text.count("\n") == len(DEMO_TYPES) + 3
    assert unsafe_characters(text) == []
    assert "\\x1b]0;pwned\\x07" in text


# -- dead letters ---------------------------------------------------------------------------------


async def _dead_letter_two_entries(backend: Backend, stream: str) -> None:
    """Have a real group subscription dead-letter two entries of ``stream``: one undecodable, then
    one delivered more than ``max_deliveries`` times without an ack."""

    lettered = [anyio.Event(), anyio.Event()]

    def on_error(error: StreamsinkError) -> None:
        if "dead-lettered" in str(error):
            next(event for event in lettered if not event.is_set()).set()

    async with streamsink.connect(backend) as streams:
        subscriber = streams.new_subscriber(
            group="cli-dlq",
            consumer_name="worker-1",
            start=StartPosition.oldest(),
            max_deliveries=1,
            claim_interval=0.05,
            on_error=on_error,
        )
        await backend.append([Entry(stream, "tool_start", b"\x1b]0;not json\x07")])
        async with subscriber.subscribe(stream):
            with anyio.fail_after(10):
                await lettered[0].wait()  # undecodable: dead-lettered at once
        await streams.sink.send(StreamEvent("tool_start", "r-1", stream.split("/")[1]))
        async with subscriber.subscribe_manual(stream) as deliveries:
            async for delivery in deliveries:
                await delivery.nack()  # redelivered next, and that is one delivery too many
                break
            with anyio.fail_after(10):
                await lettered[1].wait()


async def _tail_letters(backend: Backend, stream: str) -> tuple[str, str]:
    out, errors = io.StringIO(), io.StringIO()
    with anyio.move_on_after(5):  # tail waits for two letters; before the fix it never saw any
        status = await run_tail(
            backend,
            f"{stream}:dlq",
            PlainOutput(out),
            start=StartPosition.oldest(),
            limit=2,
            errors=errors,
        )
        assert status == 0
    return out.getvalue(), errors.getvalue()


def assert_letters(out: str, errors: str, stream: str) -> None:
    assert errors == ""
    lines = out.splitlines()
    assert len(lines) == 2, out
    assert unsafe_characters(out) == []
    for line in lines:
        assert "dead_letter" in line
        assert stream in line
        assert "group cli-dlq" in line
        assert "consumer worker-1" in line
    undecodable, unacked = lines
    assert "1 attempt" in undecodable
    assert "undecodable" in undecodable
    assert "\\x1b]0;not json\\x07" in undecodable  # the original payload, escaped
    assert "not acknowledged after 1 deliveries" in unacked
    assert '"type":"tool_start"' in unacked


@pytest.mark.anyio
async def test_tail_prints_dead_letters_on_memory() -> None:
    """tail on a dead-letter stream prints each letter: origin, group and consumer, attempts,
    reason and an escaped preview of the payload; no "undecodable entry" warning."""
    stream = f"session/dlq-{secrets.token_hex(4)}"
    backend = await streamsink.open_backend("memory://cli-dlq")
    try:
        await _dead_letter_two_entries(backend, stream)
        out, errors = await _tail_letters(backend, stream)
    finally:
        await backend.aclose()
    assert_letters(out, errors, stream)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_tail_prints_dead_letters_on_fakeredis() -> None:
    """The same on fakeredis://."""
    pytest.importorskip("fakeredis")
    stream = f"session/dlq-{secrets.token_hex(4)}"
    backend = await streamsink.open_backend("fakeredis://cli-dlq")
    try:
        await _dead_letter_two_entries(backend, stream)
        out, errors = await _tail_letters(backend, stream)
    finally:
        await backend.aclose()
    assert_letters(out, errors, stream)


@pytest.mark.anyio
async def test_tail_still_warns_about_undecodable_entries() -> None:
    """An entry that is neither an envelope nor a dead letter gets one escaped warning."""
    backend = await streamsink.open_backend(f"memory://cli-undecodable-{secrets.token_hex(4)}")
    out, errors = io.StringIO(), io.StringIO()
    try:
        await backend.append([Entry("session/u", "x", b'{"no": "type\\u001b"}')])
        async with streamsink.connect(backend) as streams:
            await streams.sink.send(StreamEvent("run_stream_end", "r-1", "u"))
        await run_tail(
            backend,
            "session/u",
            PlainOutput(out),
            start=StartPosition.oldest(),
            limit=1,
            errors=errors,
        )
    finally:
        await backend.aclose()
    assert "run r-1 ended" in out.getvalue()
    warnings = errors.getvalue().splitlines()
    assert len(warnings) == 1
    assert warnings[0].startswith("streamsink: warning: undecodable entry session/u/")


# -- a closed stdout ------------------------------------------------------------------------------


class _ClosedPipe(io.StringIO):
    """A stdout whose reader has gone: every write fails as a closed pipe does."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.anyio
async def test_demo_finishes_its_run_when_stdout_closes() -> None:
    """With nowhere to print, the demo still publishes the whole run (kept here)."""
    broker = f"cli-closed-{secrets.token_hex(4)}"
    backend = await streamsink.open_backend(f"memory://{broker}")
    output = PlainOutput(_ClosedPipe())
    try:
        assert await run_demo(backend, output, pace=0, keep=True, time_limit=5) == 0
        assert output.broken
        async with streamsink.connect(backend) as streams:
            stream = next(s for s in get_broker(broker).stream_ids() if ":" not in s)
            subscriber = streams.new_subscriber(group=None, start=StartPosition.oldest())
            async with subscriber.subscribe(stream) as events:
                types = []
                async for event in events:
                    types.append(event.type)
                    if event.type == EventType.RUN_STREAM_END:
                        break
    finally:
        await backend.aclose()
    assert types == demo_entry_names()


def demo_entry_names() -> list[str]:
    """The event type of each entry the demo publishes, in order."""
    return [event.type for _, event in demo_events("r", "s")]


def _closed_stdout_run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """Run the script with a stdout whose reader closed before it wrote anything (what
    ``streamsink ... | head -1`` becomes once head has its line)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [str(SCRIPT), *args],
            env=_clean_env(**env),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "args",
    [["demo", "--pace", "0"], ["backends"], ["--version"]],
    ids=["demo", "backends", "version"],
)
def test_closed_stdout_ends_quietly_with_141(args: list[str]) -> None:
    """A closed stdout ends the command like other Unix tools: no message, status 128+SIGPIPE."""
    result = _closed_stdout_run(args)
    assert (result.returncode, result.stderr) == (141, "")


def test_help_into_a_closed_stdout_is_quiet() -> None:
    """--help too ends without a message (argparse ignores its own write errors, so the status
    may be 0)."""
    result = _closed_stdout_run(["demo", "--help"])
    assert result.returncode in (0, 141)
    assert result.stderr == ""


def test_demo_keeps_the_whole_run_when_stdout_closes(redis_url: str) -> None:
    """demo --keep into a closed pipe leaves the complete run in Redis; without --keep, the
    stream is destroyed as usual."""
    redis = pytest.importorskip("redis")
    prefix = f"app:pipe-{secrets.token_hex(4)}:"
    url = f"{redis_url}?key_prefix={prefix}"
    client = redis.Redis.from_url(redis_url)
    try:
        result = _closed_stdout_run(["demo", "--url", url, "--pace", "0", "--keep"])
        assert (result.returncode, result.stderr) == (141, "")
        keys = client.keys(f"{prefix}*")
        assert len(keys) == 1
        entries = client.xrange(keys[0])
        names = [fields[b"n"].decode() for _, fields in entries]
        assert names == demo_entry_names()
        client.delete(*keys)

        result = _closed_stdout_run(["demo", "--url", url, "--pace", "0"])
        assert (result.returncode, result.stderr) == (141, "")
        assert client.keys(f"{prefix}*") == []
    finally:
        client.close()


def test_tail_stops_when_stdout_closes(redis_url: str) -> None:
    """tail (which would otherwise run until interrupted) stops at a closed stdout."""
    redis = pytest.importorskip("redis")
    stream = f"session/pipe-{secrets.token_hex(4)}"
    client = redis.Redis.from_url(redis_url)
    try:
        for payload in hostile_envelopes("pipe")[:2]:
            client.xadd(f"pulse:stream:{stream}", {"n": "event", "p": payload})
    finally:
        client.close()
    result = _closed_stdout_run(["tail", stream, "--url", redis_url, "--from", "oldest"])
    assert (result.returncode, result.stderr) == (141, "")
