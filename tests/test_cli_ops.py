"""The operator commands (``streams``, ``groups``, ``pending``, ``consumers``, ``dlq``, ``trim``,
``send``, and ``tail``'s ``--after``/``--until``/``--group``/``--json``) on memory:// and a real
Redis, their error lines, and what they print of secrets and hostile values.

The commands run in process on one backend object (as the tail tests do): a memory:// broker
lives in its process, and a consumer that holds nothing is deleted when its handle closes, so the
states to inspect exist only while the handles that made them are open."""

from __future__ import annotations

import io
import re
import secrets
import sys
import unicodedata
from collections.abc import AsyncIterator
from typing import Any

import anyio
import orjson
import pytest

import streamsink
from streamsink import StartPosition, StreamEvent
from streamsink._cli import PlainOutput, main, make_output, run_tail
from streamsink._cli._dlq import run_dlq
from streamsink._cli._exits import CommandError
from streamsink._cli._ops import (
    run_consumers,
    run_groups,
    run_pending,
    run_send,
    run_streams,
    run_trim,
)
from streamsink._cli._present import json_line
from streamsink._deadletter import DeadLetter, encode_dead_letter
from streamsink.backend import Backend, Entry, OperableBackend, TrimBound

OLDEST = StartPosition.oldest()
_RICH_STYLE = re.compile(r"\x1b\[[0-9;]*m")
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\r\n\x9b31m\u202egnp\u2028"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis:// runs on asyncio only (memory:// on trio: the kit checks it)


@pytest.fixture(autouse=True)
def _no_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMSINK_URL", raising=False)


@pytest.fixture(params=["memory", "redis"])
def url(request: pytest.FixtureRequest) -> str:
    token = secrets.token_hex(4)
    if request.param == "memory":
        return f"memory://cli-ops-{token}"
    redis_url: str = request.getfixturevalue("redis_url")
    return f"{redis_url}?key_prefix=app:ops-{token}:"


@pytest.fixture
async def backend(url: str) -> AsyncIterator[OperableBackend]:
    opened = await streamsink.open_backend(url)
    assert opened.capabilities.operations
    ops: Any = opened
    try:
        yield ops
    finally:
        for stream_id in await ops.list_streams():
            await opened.destroy(stream_id)
        await opened.aclose()


def unsafe(text: str) -> list[str]:
    return [c for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]


def json_rows(text: str) -> list[dict[str, Any]]:
    assert unsafe(text) == [], text
    return [orjson.loads(line) for line in text.splitlines()]


async def send(backend: Backend, stream: str, *types: str) -> list[str]:
    sink = streamsink.StreamSink(backend, streamsink.SinkOptions(stream_id=lambda _: stream))
    async with sink:
        return [(await sink.send(StreamEvent(t, "run-1", "ops"))).entry_id for t in types]


async def run(command: Any, *args: Any, **kwargs: Any) -> str:
    out = io.StringIO()
    assert await command(*args, PlainOutput(out), **kwargs) == 0
    return out.getvalue()


# -- streams, groups, pending, consumers ----------------------------------------------------------


@pytest.mark.anyio
async def test_streams_lists_lengths_ids_and_times(backend: OperableBackend) -> None:
    ids = await send(backend, "session/ops-a", "tool_start", "tool_end", "run_stream_end")
    await send(backend, "session/ops-b", "usage")
    docs = {d["stream"]: d for d in json_rows(await run(run_streams, backend, json=True))}
    assert set(docs) == {"session/ops-a", "session/ops-b"}
    a = docs["session/ops-a"]
    assert (a["length"], a["first_id"], a["last_id"]) == (3, ids[0], ids[-1])
    assert a["first_time"].startswith("20")
    assert a["last_time"] >= a["first_time"]
    table = (await run(run_streams, backend)).splitlines()
    assert table[0].split()[:3] == ["STREAM", "LENGTH", "FIRST"]
    assert table[1].split()[:3] == ["session/ops-a", "3", ids[0]]


@pytest.mark.anyio
async def test_groups_pending_and_consumers_show_who_holds_what(backend: OperableBackend) -> None:
    stream = "session/ops-g"
    ids = await send(backend, stream, "tool_start", "tool_end", "usage", "run_stream_end")
    busy = await backend.open_group_consumer(stream, "workers", "busy", OLDEST)
    done = await backend.open_group_consumer(stream, "workers", "done", OLDEST)
    try:
        assert [r.entry_id for r in await busy.read_new(2, 0)] == ids[:2]
        assert [r.entry_id for r in await done.read_new(1, 0)] == ids[2:3]
        await done.ack(ids[2:3])

        (group,) = json_rows(await run(run_groups, backend, stream, json=True))
        assert (group["group"], group["consumers"], group["pending"]) == ("workers", 2, 2)
        assert (group["last_delivered_id"], group["lag"]) == (ids[2], 1)
        assert 0 <= group["idle"] < 60
        assert "workers" in await run(run_groups, backend, stream)

        rows = json_rows(await run(run_pending, backend, stream, "workers", json=True))
        assert [(r["entry_id"], r["consumer"], r["deliveries"]) for r in rows] == [
            (ids[0], "busy", 1),
            (ids[1], "busy", 1),
        ]
        assert all(r["since"].startswith("20") for r in rows)
        paged = json_rows(
            await run(run_pending, backend, stream, "workers", after=ids[0], limit=1, json=True)
        )
        assert [r["entry_id"] for r in paged] == [ids[1]]
        table = await run(run_pending, backend, stream, "workers", consumer="done")
        assert table == "nothing pending in group workers\n"

        listed = json_rows(await run(run_consumers, backend, stream, "workers", json=True))
        assert [(c["consumer"], c["pending"]) for c in listed] == [("busy", 2), ("done", 0)]

        await busy.nack(ids[:1])  # due for redelivery now: no idle time to show
        (nacked, _) = json_rows(await run(run_pending, backend, stream, "workers", json=True))
        assert (nacked["entry_id"], nacked["idle"], nacked["since"]) == (ids[0], None, None)
        table = await run(run_pending, backend, stream, "workers", limit=1)
        assert "due now" in table.splitlines()[1]
    finally:
        await busy.aclose()
        await done.aclose()


@pytest.mark.anyio
async def test_reap_idle_removes_only_idle_consumers_holding_nothing(
    backend: OperableBackend,
) -> None:
    stream = "session/ops-reap"
    ids = await send(backend, stream, "tool_start", "tool_end")
    holder = await backend.open_group_consumer(stream, "workers", "holder", OLDEST)
    idler = await backend.open_group_consumer(stream, "workers", "idler", OLDEST)
    try:
        await holder.read_new(1, 0)
        await idler.read_new(1, 0)
        await idler.ack(ids[1:])
        await anyio.sleep(0.05)
        kept = json_rows(
            await run(run_consumers, backend, stream, "workers", reap_idle=3600, json=True)
        )
        assert [(c["consumer"], c["removed"]) for c in kept] == [
            ("holder", False),
            ("idler", False),
        ]
        table = await run(run_consumers, backend, stream, "workers", reap_idle=0.01)
        lines = {line.split()[0]: line for line in table.splitlines()[1:]}
        assert lines["holder"].endswith("kept"), table
        assert lines["idler"].endswith("removed"), table
        left = await backend.list_consumers(stream, "workers")
        assert [(c.name, c.pending) for c in left or []] == [("holder", 1)]
        pending = await backend.list_pending(stream, "workers")
        assert [p.entry_id for p in pending or []] == ids[:1]
    finally:
        await holder.aclose()
        await idler.aclose()


# -- trim, send, tail -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_trim_by_maxlen_and_minid(backend: OperableBackend) -> None:
    stream = "session/ops-trim"
    ids = await send(backend, stream, *["usage"] * 6)
    out = await run(run_trim, backend, stream, TrimBound.maxlen(4))
    assert out == f"trimmed 2 entries from {stream}: 4 left\n"
    (doc,) = json_rows(await run(run_trim, backend, stream, TrimBound.minid(ids[4]), json=True))
    assert doc == {"stream": stream, "removed": 2, "length": 2}
    info = await backend.stream_info(stream)
    assert info is not None
    assert info.first_id == ids[4]


@pytest.mark.anyio
async def test_send_then_tail_after_until_json(backend: OperableBackend) -> None:
    stream = "session/ops-send"
    docs = []
    for kind, payload in [("tool_start", {"tool_name": HOSTILE}), ("run_stream_end", None)]:
        (doc,) = json_rows(await run(run_send, backend, stream, kind, payload=payload, json=True))
        docs.append(doc)
    await run(run_send, backend, stream, "usage")  # after the end: --until stops before it
    out = io.StringIO()
    status = await run_tail(
        backend,
        stream,
        PlainOutput(out),
        start=StartPosition.after(docs[0]["entry_id"]),
        until="run_stream_end",
        json=True,
    )
    assert status == 0
    (event,) = json_rows(out.getvalue())
    assert (event["entry_id"], event["type"]) == (docs[1]["entry_id"], "run_stream_end")
    out = io.StringIO()
    await run_tail(backend, stream, PlainOutput(out), start=OLDEST, limit=1, json=True)
    (first,) = json_rows(out.getvalue())
    assert first["payload"] == {"tool_name": HOSTILE}  # escaped in the line, exact once decoded


@pytest.mark.anyio
async def test_tail_in_a_group_acknowledges_what_it_prints(backend: OperableBackend) -> None:
    stream = "session/ops-tailgroup"
    await send(backend, stream, "tool_start", "run_stream_end")
    out = io.StringIO()
    await run_tail(
        backend, stream, PlainOutput(out), start=OLDEST, group="ops", until="run_stream_end"
    )
    assert len(out.getvalue().splitlines()) == 2
    (group,) = await backend.list_groups(stream) or []
    assert (group.name, group.pending, group.lag) == ("ops", 0, 0)


# -- dead letters ---------------------------------------------------------------------------------


def letter(stream: str, entry_id: str, reason: str, payload: bytes) -> Entry:
    dead = DeadLetter(
        origin_stream=stream,
        entry_id=entry_id,
        group="workers",
        consumer="w-1",
        attempts=5,
        reason=reason,
        event_name="tool_start",
        payload=payload,
    )
    return Entry(f"{stream}:dlq", "dead_letter", encode_dead_letter(dead))


@pytest.mark.anyio
async def test_dlq_lists_shows_replays_and_purges(backend: OperableBackend) -> None:
    stream = "session/ops-dlq"
    binary = b"\xff\x00\x1b[2J"
    letters = await backend.append(
        [
            letter(stream, "1-0", "not acknowledged after 5 deliveries", b'{"type":"tool_start"}'),
            letter(stream, "2-0", HOSTILE, binary),
        ]
    )
    listed = json_rows(await run(run_dlq, backend, "list", stream, json=True))
    assert [(d["letter_id"], d["entry_id"], d["attempts"]) for d in listed] == [
        (letters[0], "1-0", 5),
        (letters[1], "2-0", 5),
    ]
    assert listed[1]["reason"] == HOSTILE
    assert "payload_base64" in listed[1]
    table = await run(run_dlq, backend, "list", stream)
    assert unsafe(table) == []
    assert "\\x1b]0;pwned" in table
    assert len(table.splitlines()) == 3
    shown = await run(run_dlq, backend, "show", stream, ids=[letters[1]])
    assert unsafe(shown) == []
    assert "payload_base64" in shown

    with pytest.raises(CommandError, match="not confirmed") as refused:
        await run(run_dlq, backend, "replay", stream, confirm=lambda question: False)
    assert refused.value.status == 1
    assert await backend.stream_info(stream) is None  # nothing replayed
    asked: list[str] = []
    out = await run(run_dlq, backend, "replay", stream, confirm=lambda q: asked.append(q) or True)
    assert asked == [f"replay 2 dead letter(s) from {stream}:dlq to {stream}?"]
    assert f"--through {letters[1]}" in out
    reader = await backend.open_reader(stream, OLDEST)
    try:
        replayed = await reader.read(10, 0)
    finally:
        await reader.aclose()
    assert [(r.name, r.payload) for r in replayed] == [
        ("tool_start", b'{"type":"tool_start"}'),
        ("tool_start", binary),
    ]
    out = await run(run_dlq, backend, "purge", f"{stream}:dlq", through=letters[0], yes=True)
    assert out == f"purged 1 dead letter(s) from {stream}:dlq\n"
    left = json_rows(await run(run_dlq, backend, "list", stream, json=True))
    assert [d["letter_id"] for d in left] == letters[1:]
    with pytest.raises(CommandError, match="no dead letter '9-9'"):
        await run(run_dlq, backend, "show", stream, ids=["9-9"])


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_unknown_stream_group_and_letter_are_named(backend: OperableBackend) -> None:
    await send(backend, "session/ops-e", "usage")
    cases = [
        (run_groups, ("session/nope",), "unknown stream 'session/nope'"),
        (run_pending, ("session/ops-e", "nogroup"), "unknown group 'nogroup'"),
        (run_consumers, ("session/nope", "g"), "unknown stream 'session/nope'"),
        (run_trim, ("session/nope", TrimBound.maxlen(1)), "unknown stream 'session/nope'"),
    ]
    for command, args, expected in cases:
        with pytest.raises(CommandError, match=expected):
            await run(command, backend, *args)
    with pytest.raises(CommandError, match="unknown stream 'session/nope'"):
        await run(run_dlq, backend, "list", "session/nope")
    assert await run(run_dlq, backend, "list", "session/ops-e") == (
        "no dead letters in session/ops-e:dlq\n"
    )


class _NoOperations:
    """A backend that declares only the core SPI (a third-party backend could)."""

    def __init__(self, inner: Backend) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @property
    def capabilities(self) -> Any:
        import attrs

        return attrs.evolve(self._inner.capabilities, operations=False)


@pytest.mark.anyio
async def test_a_backend_without_the_capability_is_named(backend: OperableBackend) -> None:
    plain: Any = _NoOperations(backend)
    expected = f"backend {backend.description} cannot list streams"
    with pytest.raises(CommandError, match=expected):
        await run(run_streams, plain)
    with pytest.raises(CommandError, match="cannot trim streams"):
        await run(run_trim, plain, "s", TrimBound.maxlen(0))


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _one_error(err: str, expected: str) -> None:
    assert err.count("\n") == 1, err
    assert err.startswith("streamsink: error: "), err
    assert expected in err, err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["groups", "session/x"], "unknown stream 'session/x'"),
        (["send", "session/x", "usage", "--payload", "{nope"], "--payload is not JSON"),
        (["trim", "session/x", "--minid", "12-ab"], "'12-ab' is not of the form <ms>-<seq>"),
        (["tail", "session/x", "--after", "later"], "'later' is not of the form"),
        (["dlq", "show", "session/x"], "dlq show takes STREAM and one letter ID"),
        (["dlq", "purge", "session/x", "1-0"], "--through ID"),
        (["pending", "session/x", "g", "--after", "x"], "'x' is not of the form"),
    ],
)
def test_bad_input_is_one_error_line(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through ``main`` on memory://: exit 2, nothing on stdout, one line naming the problem."""
    url = f"memory://cli-ops-bad-{secrets.token_hex(4)}"
    status, out, err = _cli([*args, "--url", url], capsys)
    assert (status, out) == (2, "")
    _one_error(err, expected)


def test_dlq_replay_asks_on_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``dlq replay`` without --yes asks on stderr and reads stdin: no answer replays nothing
    (status 1); "y" replays."""
    name = f"cli-ops-ask-{secrets.token_hex(4)}"
    url = f"memory://{name}"

    async def setup() -> None:
        backend = await streamsink.open_backend(url)
        await backend.append([letter("session/ask", "1-0", "boom", b"{}")])
        await backend.aclose()

    anyio.run(setup)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    status, out, err = _cli(["dlq", "replay", "session/ask", "--url", url], capsys)
    assert status == 1
    assert "replay 1 dead letter(s) from session/ask:dlq to session/ask? [y/N]" in err
    assert "not confirmed: nothing was replayed" in err
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    status, out, err = _cli(["dlq", "replay", "session/ask", "--url", url], capsys)
    assert status == 0
    assert "replayed" in out
    status, out, err = _cli(["streams", "--url", url, "--json"], capsys)
    lengths = {d["stream"]: d["length"] for d in json_rows(out)}
    assert lengths == {"session/ask": 1, "session/ask:dlq": 1}


@pytest.mark.parametrize(
    "command", [["streams"], ["groups", "s"], ["dlq", "s"], ["trim", "s", "--maxlen", "0"]]
)
def test_a_secret_in_the_url_is_never_printed(
    command: list[str], redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A password in the URL appears nowhere: not in the error of a server that refuses it, nor
    of one that is not there."""
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    for url in (
        f"redis://ops:hunter2-secret@127.0.0.1:{port}/0",
        "redis://:hunter2-secret@127.0.0.1:1/0?socket_connect_timeout=0.3",
    ):
        status, out, err = _cli([*command, "--url", url], capsys)
        assert status == 2, (out, err)
        assert "hunter2" not in out + err
        _one_error(err, "streamsink: error: ")


# -- hostile values -------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("color", ["never", "always"])
async def test_hostile_stream_ids_and_names_are_escaped(
    backend: OperableBackend, color: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stream ids, groups and consumers from hostile producers print escaped, in tables (plain
    and rich) and in JSON (which still decodes to the exact values)."""
    if color == "always":
        pytest.importorskip("rich")
        monkeypatch.setenv("COLUMNS", "400")  # rich folds long cells at the console's width
    stream = "session/h\x1bc\x07\x9b2J\u202egnp\r\n\u2028end"  # no space nor brackets
    await backend.append([Entry(stream, "usage", b"{}")])
    consumer = await backend.open_group_consumer(stream, "g" + HOSTILE, "c" + HOSTILE, OLDEST)
    try:
        await consumer.read_new(1, 0)
        for command, args in [
            (run_streams, ()),
            (run_groups, (stream,)),
            (run_consumers, (stream, "g" + HOSTILE)),
            (run_pending, (stream, "g" + HOSTILE)),
        ]:
            out = io.StringIO()
            assert await command(backend, *args, make_output(color, out)) == 0
            text = out.getvalue()
            if color == "always":
                text = _RICH_STYLE.sub("", text)
            assert unsafe(text) == [], (command, text)
            assert "\\x1b" in text, text
            assert "\\u202e" in text, text
        docs = json_rows(await run(run_consumers, backend, stream, "g" + HOSTILE, json=True))
        assert docs[0]["consumer"] == "c" + HOSTILE
    finally:
        await consumer.aclose()


def test_json_line_escapes_what_a_terminal_acts_on() -> None:
    doc = {"s": HOSTILE + "\U000e0001 ok é 😀"}
    line = json_line(doc)
    assert unsafe(line) == []
    assert "é 😀" in line
    assert orjson.loads(line) == doc
