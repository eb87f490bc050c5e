"""The operator commands (``streams``, ``groups``, ``pending``, ``consumers``, ``dlq``, ``trim``,
``send``, ``tail``'s flags) on NATS JetStream, run as an operator runs them: ``python -m
streamsink`` in a process of its own, against the fixture's nats-server.

That process has no group member open, and JetStream keeps none: it sees the groups (durable
consumers) with their counts, an empty member list (nothing to reap), and refuses to list
pending entries it cannot see, in one error line. Each test uses its own stream and subject
prefixes, so ``streams`` lists only its streams."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import streamsink
from streamsink import (
    ConfigurationError,
    DeadLetter,
    StartPosition,
    StreamEvent,
    encode_dead_letter,
)
from streamsink.backend import Entry, TrimBound

from streamsink_nats import NatsBackend

# Every command is a new Python process (most of a second each): `slow`, out of the quick loop;
# the kit's operations checks (tests/test_backend_kit.py) stay in it.
pytestmark = [pytest.mark.anyio, pytest.mark.slow]
OLDEST = StartPosition.oldest()


@pytest.fixture
def url(nats_url: str) -> str:
    token = secrets.token_hex(4)
    return f"{nats_url}?stream_prefix=OPS{token}_&subject_prefix=ops{token}"


@pytest.fixture
async def backend(url: str) -> AsyncIterator[NatsBackend]:
    opened = await NatsBackend.connect(url)
    try:
        yield opened
    finally:
        for stream_id in await opened.list_streams():
            await opened.destroy(stream_id)
        await opened.aclose()


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``python -m streamsink ARGS`` importing the streamsink and streamsink_nats under test."""
    import streamsink_nats

    paths = [Path(module.__file__ or "").parent.parent for module in (streamsink, streamsink_nats)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSINK_")}
    env["PYTHONPATH"] = os.pathsep.join(str(path) for path in paths)
    return subprocess.run(
        [sys.executable, "-m", "streamsink", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok(*args: str, stdin: str = "") -> str:
    result = cli(*args, stdin=stdin)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


def rows(*args: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ok(*args, "--json").splitlines()]


def one_error(result: subprocess.CompletedProcess[str], expected: str, status: int = 2) -> None:
    """Exit ``status``, nothing on stdout, one line naming the problem."""
    assert (result.returncode, result.stdout) == (status, ""), (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("streamsink: error: "), result.stderr
    assert expected in result.stderr, result.stderr


async def send(backend: NatsBackend, stream: str, *types: str) -> list[str]:
    sink = streamsink.StreamSink(backend, streamsink.SinkOptions(stream_id=lambda _: stream))
    async with sink:
        return [(await sink.send(StreamEvent(t, "run-1", "ops"))).entry_id for t in types]


async def test_streams_lists_what_this_prefix_holds(backend: NatsBackend, url: str) -> None:
    ids = await send(backend, "session/ops-a", "tool_start", "tool_end", "run_stream_end")
    await send(backend, "session/ops-b", "usage")
    # Not ours though it has our prefix: its rest is no encoded stream id (not UTF-8).
    prefix = backend.options.stream_prefix
    await backend.js.add_stream(name=f"{prefix}_FF", subjects=[f"{prefix}.foreign"])
    docs = {d["stream"]: d for d in rows("streams", "--url", url)}
    assert set(docs) == {"session/ops-a", "session/ops-b"}
    a = docs["session/ops-a"]
    assert (a["length"], a["first_id"], a["last_id"]) == (3, ids[0], ids[-1])
    table = ok("streams", "--url", url).splitlines()
    assert table[1].split()[:3] == ["session/ops-a", "3", ids[0]]
    one_error(cli("streams", "--url", f"{url}&max_msgs=-1"), "max_msgs")
    await backend.js.delete_stream(f"{prefix}_FF")


async def test_groups_consumers_and_pending_from_another_process(
    backend: NatsBackend, url: str
) -> None:
    """The group's counts are JetStream's; its members live in this test's process, which the
    command's process cannot see: no consumers, and pending refused in one line."""
    stream = "session/ops-g"
    ids = await send(backend, stream, "tool_start", "tool_end", "usage", "run_stream_end")
    busy = await backend.open_group_consumer(stream, "workers", "busy", OLDEST)
    done = await backend.open_group_consumer(stream, "workers", "done", OLDEST)
    try:
        assert [r.entry_id for r in await busy.read_new(2, 0)] == ids[:2]
        assert [r.entry_id for r in await done.read_new(1, 0)] == ids[2:3]
        await done.ack(ids[2:3])
        (group,) = rows("groups", stream, "--url", url)
        assert (group["group"], group["pending"], group["consumers"]) == ("workers", 2, 0)
        assert (group["last_delivered_id"], group["lag"]) == (ids[2], 1)
        assert 0 <= group["idle"] < 60
        assert "workers" in ok("groups", stream, "--url", url)
        assert rows("consumers", stream, "workers", "--url", url) == []
        assert rows("consumers", stream, "workers", "--reap-idle", "0", "--url", url) == []
        one_error(
            cli("pending", stream, "workers", "--url", url),
            "JetStream does not list a group's pending entries",
        )
        # One consumer's: what this process's members of that name hold (none here).
        assert rows("pending", stream, "workers", "--consumer", "busy", "--url", url) == []
        # In this process, the backend's own members are listed.
        held = await backend.list_pending(stream, "workers")
        assert [(p.entry_id, p.consumer) for p in held or []] == [
            (ids[0], "busy"),
            (ids[1], "busy"),
        ]
    finally:
        await busy.aclose()
        await done.aclose()
    one_error(cli("groups", "session/nope", "--url", url), "unknown stream 'session/nope'")
    one_error(cli("consumers", stream, "nogroup", "--url", url), "unknown group 'nogroup'")
    one_error(cli("pending", stream, "workers", "--after", "x", "--url", url), "'x' is not a NATS")


async def test_reap_idle_in_the_process_holding_the_members(backend: NatsBackend) -> None:
    """Where members are known (their own process), reaping keeps the one holding an entry."""
    stream = "session/ops-reap"
    ids = await send(backend, stream, "tool_start", "tool_end")
    holder = await backend.open_group_consumer(stream, "workers", "holder", OLDEST)
    idler = await backend.open_group_consumer(stream, "workers", "idler", OLDEST)
    try:
        await holder.read_new(1, 0)
        await idler.read_new(1, 0)
        await idler.ack(ids[1:])
        assert not await backend.delete_idle_consumer(stream, "workers", "holder", min_idle=0)
        assert await backend.delete_idle_consumer(stream, "workers", "idler", min_idle=0)
        left = await backend.list_consumers(stream, "workers")
        assert [(c.name, c.pending) for c in left or []] == [("holder", 1)]
        await idler.read_new(1, 0)  # reading again lists it again
        left = await backend.list_consumers(stream, "workers")
        assert [c.name for c in left or []] == ["holder", "idler"]
    finally:
        await holder.aclose()
        await idler.aclose()


async def test_names_nats_cannot_hold_are_refused(backend: NatsBackend) -> None:
    stream = "session/ops-names"
    await send(backend, stream, "usage")
    long = "g" * 300
    for call in (
        lambda: backend.list_consumers(stream, long),
        lambda: backend.list_pending(stream, ""),
        lambda: backend.delete_idle_consumer(stream, long, "c", min_idle=0),
        lambda: backend.list_groups("s" * 300),
        lambda: backend.trim_stream("s" * 300, TrimBound.maxlen(0)),
    ):
        with pytest.raises(ConfigurationError, match="NATS"):
            await call()
    with pytest.raises(ConfigurationError, match="min_idle"):
        await backend.delete_idle_consumer(stream, "g", "c", min_idle=float("nan"))


async def test_trim_by_maxlen_and_minid(backend: NatsBackend, url: str) -> None:
    stream = "session/ops-trim"
    ids = await send(backend, stream, *["usage"] * 6)
    assert ok("trim", stream, "--maxlen", "4", "--url", url) == (
        f"trimmed 2 entries from {stream}: 4 left\n"
    )
    (doc,) = rows("trim", stream, "--minid", ids[4], "--url", url)
    assert doc == {"stream": stream, "removed": 2, "length": 2}
    info = await backend.stream_info(stream)
    assert info is not None
    assert info.first_id == ids[4]
    one_error(cli("trim", stream, "--minid", "12-ab", "--url", url), "'12-ab' is not a NATS")
    one_error(cli("trim", "session/nope", "--maxlen", "1", "--url", url), "unknown stream")


async def test_send_then_tail_after_until_group_json(backend: NatsBackend, url: str) -> None:
    stream = "session/ops-send"
    payload = json.dumps({"tool_name": "grep"})
    (first,) = rows("send", stream, "tool_start", "--payload", payload, "--url", url)
    (end,) = rows("send", stream, "run_stream_end", "--url", url)
    ok("send", stream, "usage", "--url", url)  # after the end: --until stops before it
    tailed = rows(
        "tail", stream, "--after", first["entry_id"], "--until", "run_stream_end", "--url", url
    )
    assert [(e["entry_id"], e["type"]) for e in tailed] == [(end["entry_id"], "run_stream_end")]
    (head,) = rows("tail", stream, "--from", "oldest", "--limit", "1", "--url", url)
    assert head["payload"] == {"tool_name": "grep"}
    out = ok(
        "tail",
        stream,
        "--from",
        "oldest",
        "--group",
        "ops",
        "--until",
        "run_stream_end",
        "--url",
        url,
    )
    assert len(out.splitlines()) == 2
    (group,) = await backend.list_groups(stream) or []
    # The read that brought run_stream_end brought "usage" too, unprinted and so unacknowledged:
    # pending, for JetStream to redeliver after AckWait.
    assert (group.name, group.pending, group.lag) == ("ops", 1, 0)
    one_error(cli("send", stream, "usage", "--payload", "{nope", "--url", url), "--payload")
    one_error(cli("tail", stream, "--after", "later", "--url", url), "'later' is not a NATS")


def letter(stream: str, entry_id: str, reason: str) -> Entry:
    dead = DeadLetter(
        origin_stream=stream,
        entry_id=entry_id,
        group="workers",
        consumer="w-1",
        attempts=5,
        reason=reason,
        event_name="tool_start",
        payload=b'{"type":"tool_start"}',
    )
    return Entry(f"{stream}:dlq", "dead_letter", encode_dead_letter(dead))


async def test_dlq_lists_shows_replays_and_purges(backend: NatsBackend, url: str) -> None:
    stream = "session/ops-dlq"
    letters = await backend.append([letter(stream, "1", "boom"), letter(stream, "2", "bang")])
    listed = rows("dlq", "list", stream, "--url", url)
    assert [(d["letter_id"], d["entry_id"], d["reason"]) for d in listed] == [
        (letters[0], "1", "boom"),
        (letters[1], "2", "bang"),
    ]
    assert "bang" in ok("dlq", "show", stream, letters[1], "--url", url)
    one_error(cli("dlq", "show", stream, "9", "--url", url), "no dead letter '9'")
    refused = cli("dlq", "replay", stream, "--url", url, stdin="")
    assert refused.returncode == 1
    assert "not confirmed" in refused.stderr
    assert await backend.stream_info(stream) is None
    assert f"--through {letters[1]}" in ok("dlq", "replay", stream, "--url", url, stdin="y\n")
    reader = await backend.open_reader(stream, OLDEST)
    try:
        assert [r.name for r in await reader.read(10, 0)] == ["tool_start", "tool_start"]
    finally:
        await reader.aclose()
    out = ok("dlq", "purge", f"{stream}:dlq", "--through", letters[0], "--yes", "--url", url)
    assert out == f"purged 1 dead letter(s) from {stream}:dlq\n"
    assert [d["letter_id"] for d in rows("dlq", "list", stream, "--url", url)] == letters[1:]
    one_error(cli("dlq", "purge", stream, "1", "--url", url), "--through ID")
    one_error(
        cli("dlq", "purge", f"{stream}:dlq", "--through", "1-0", "--yes", "--url", url),
        "no dead letter '1-0'",
    )


@pytest.mark.parametrize("command", [["streams"], ["groups", "s"], ["trim", "s", "--maxlen", "0"]])
def test_a_secret_in_the_url_is_never_printed(command: list[str]) -> None:
    """A password in a nats:// URL appears nowhere, not even when the server is not there."""
    result = cli(*command, "--url", "nats://ops:hunter2-secret@127.0.0.1:1?connect_timeout=0.3")
    assert "hunter2" not in result.stdout + result.stderr
    one_error(result, "cannot connect to nats://127.0.0.1:1")
