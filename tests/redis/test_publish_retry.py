"""Retry-safe appends: a lost XADD reply is resolved to the entry already written, an XADD that
never ran is appended once, and an outcome that cannot be told is reported, never written twice.

Faults are made at the connection's reply reads (the commands ran on the server, their replies
are "lost"), so these run the same on fakeredis and a real server; tests/faults/ does the same
over a real network with a fault proxy.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
import redis.exceptions as rex

from streamsink import BackendUnavailableError, PublishError
from streamsink.backend import Entry
from streamsink_redis import RedisBackend
from streamsink_redis._commands import CommandConnection, Unanswered
from streamsink_redis._scripts import resolve_args, resolved
from streamsink_redis._wire import xadd_args
from tests.support.lost_replies import lose_replies
from tests.support.redis_server import RedisServer

from .conftest import raw_client_for, with_query

pytestmark = pytest.mark.anyio

KEY = "pulse:stream:{}"


def _spy_attempts(conn: CommandConnection) -> list[list[str]]:
    """Record the command names of every round trip of ``conn``."""
    made: list[list[str]] = []
    real_attempt = conn.attempt

    async def attempt(commands: Any) -> Any:
        made.append([str(command[0]) for command in commands])
        return await real_attempt(commands)

    conn.attempt = attempt  # type: ignore[method-assign]
    return made


@pytest.mark.parametrize("lost", ["closed", "timed out"])
async def test_a_lost_reply_resolves_to_the_entry_already_written(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str, url: str, lost: str
) -> None:
    """The XADD ran, its reply was lost: the retry finds the entry and returns its id; the
    stream holds it once. A connection that timed out (still open server-side) is killed
    first; one that was closed needs no kill (nor has fakeredis any)."""
    conn = backend._ctx.commands
    await backend.append([Entry(stream_id, "warm", b"0")])  # connected, its id learned
    lose_replies(conn, error=rex.ConnectionError if lost == "closed" else TimeoutError)
    (entry_id,) = await backend.append([Entry(stream_id, "x", b"1")])
    rows = await raw.xrange(KEY.format(stream_id))
    assert [row[0].decode() for row in rows][1:] == [entry_id]
    stats = conn.appender.statistics
    assert (stats.found, stats.appended) == (1, 0)
    fenced = lost == "timed out" and not url.startswith("fakeredis")
    assert stats.fences == (1 if fenced else 0)


async def test_replies_read_before_the_cut_are_kept(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """A batch cut after two replies: those two are not sent again, the rest are resolved by
    one script for their stream, and the ids come back in order, each entry written once."""
    conn = backend._ctx.commands
    await backend.append([Entry(stream_id, "warm", b"0")])
    other = stream_id + "-b"
    entries = [Entry(s, "x", b"%d" % i) for i, s in enumerate([stream_id, other] * 3)]
    lose_replies(conn, keep=2)
    made = _spy_attempts(conn)
    ids = await backend.append(entries)
    for sid in (stream_id, other):
        rows = await raw.xrange(KEY.format(sid))
        stored = [row[0].decode() for row in rows if row[1][b"n"] == b"x"]
        assert stored == [i for i, e in zip(ids, entries, strict=True) if e.stream_id == sid]
    assert made[0] == ["XADD"] * 6
    assert made[-1] == ["EVAL", "EVAL"]  # one script per stream, for the 4 entries left
    assert conn.appender.statistics.found == 4


async def test_an_xadd_that_never_ran_is_appended_once(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round trip that failed before the server ran it: the retry appends the entry, once;
    running the retry's script again finds it instead of appending it again."""
    conn = backend._ctx.commands
    await backend.append([Entry(stream_id, "warm", b"0")])
    real_attempt = conn.attempt
    lost: list[bool] = []
    scripts: list[Any] = []

    async def attempt(commands: Any) -> Any:
        if commands[0][0] == "XADD" and not lost:
            lost.append(True)  # the XADD is not sent at all
            raise Unanswered("lost before it ran (test)", replies=[], client_id=None, closed=True)
        if commands[0][0] == "EVAL":
            scripts.extend(commands)
        return await real_attempt(commands)

    monkeypatch.setattr(conn, "attempt", attempt)
    (entry_id,) = await backend.append([Entry(stream_id, "x", b"1")])
    rows = await raw.xrange(KEY.format(stream_id))
    assert [row[0].decode() for row in rows][1:] == [entry_id]
    assert conn.appender.statistics.appended == 1
    # The script is safe to run twice: a late copy finds what the first appended.
    again = resolved(await raw.execute_command(*scripts[0]), 1)
    assert [(e.outcome, e.value) for e in again.entries] == [("found", entry_id)]
    assert await raw.xlen(KEY.format(stream_id)) == 2


async def test_an_entry_trimmed_before_the_retry_is_reported_not_written_again(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lost XADD ran, then the stream was trimmed past it: the retry cannot tell, so the
    send raises PublishError saying the outcome is unknown, and nothing is written again."""
    conn = backend._ctx.commands
    await backend.append([Entry(stream_id, "warm", b"0")])
    real_attempt = conn.attempt
    trimmed: list[bool] = []

    async def attempt(commands: Any) -> Any:
        if commands[-1][0] == "TIME" and not trimmed:  # the retry's first round trip
            trimmed.append(True)
            await raw.execute_command("XTRIM", KEY.format(stream_id), "MAXLEN", "0")
        return await real_attempt(commands)

    lose_replies(conn)
    monkeypatch.setattr(conn, "attempt", attempt)
    with pytest.raises(PublishError, match="outcome of 1 of 1 entry is unknown") as info:
        await backend.append([Entry(stream_id, "x", b"1")])
    assert "trimmed" in str(info.value)
    assert "not written again to avoid a duplicate" in str(info.value)
    assert await raw.xlen(KEY.format(stream_id)) == 0
    assert conn.appender.statistics.unknown == 1


async def test_no_retries_means_no_retry(redis_url: str, stream_id: str) -> None:
    """retries=0 (a connection option: real servers only): a lost reply is reported
    (BackendUnavailableError) and nothing runs again; the entry still carries its idempotency
    field."""
    async with await RedisBackend.open(with_query(redis_url, retries=0)) as backend:
        conn = backend._ctx.commands
        await backend.append([Entry(stream_id, "warm", b"0")])
        lose_replies(conn)
        made = _spy_attempts(conn)
        with pytest.raises(BackendUnavailableError, match="reply lost"):
            await backend.append([Entry(stream_id, "x", b"1")])
        assert made == [["XADD"]]
    raw = raw_client_for(redis_url)
    try:
        rows = await raw.xrange(KEY.format(stream_id))
    finally:
        await raw.aclose()
    assert len(rows) == 2
    assert b"i" in rows[1][1]


async def test_first_attempts_send_no_script(redis_process: RedisServer, stream_id: str) -> None:
    """Without faults an append is its XADDs (and, on a fresh connection, one CLIENT ID in the
    same write): no EVAL, no TIME, no CLIENT KILL reach the server."""
    client = aioredis.Redis(port=redis_process.port, protocol=2)
    try:
        async with await RedisBackend.open(redis_process.url) as backend:
            await client.execute_command("CONFIG", "RESETSTAT")
            for i in range(10):
                await backend.append([Entry(stream_id, "x", b"%d" % i)])
            await backend.append([Entry(stream_id, "x", b"batch")] * 20)
            stats = await client.info("commandstats")
    finally:
        await client.aclose()
    names = {name.removeprefix("cmdstat_") for name in stats}
    assert stats["cmdstat_xadd"]["calls"] == 30
    assert stats["cmdstat_client|id"]["calls"] == 1
    assert not names & {"eval", "evalsha", "time", "client|kill", "xrevrange"}


async def test_a_timeout_before_the_connection_told_its_id_is_reported(
    redis_process: RedisServer, stream_id: str
) -> None:
    """The first round trip of a fresh connection timed out before any reply: that connection
    cannot be fenced, so its XADDs might still run; the send raises PublishError (outcome
    unknown) instead of writing the entry a second time."""
    url = with_query(redis_process.url, socket_timeout=1)
    async with await RedisBackend.open(url) as backend:
        seen = lose_replies(backend._ctx.commands, error=TimeoutError)
        with pytest.raises(PublishError, match="could not be closed before a retry"):
            await backend.append([Entry(stream_id, "x", b"1")])
        assert seen == [0]
        raw = raw_client_for(redis_process.url)
        try:
            assert await raw.xlen(KEY.format(stream_id)) == 1  # it did run: once
        finally:
            await raw.aclose()


async def test_a_server_refusing_client_kill_is_logged_once_and_retries_go_on(
    redis_process: RedisServer, stream_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An ACL without CLIENT KILL: the fence is skipped with one warning (the residual window
    is documented), and lost replies are still resolved by the script."""
    admin = aioredis.Redis(port=redis_process.port, protocol=2)
    try:
        await admin.execute_command(
            "ACL", "SETUSER", "nokill", "on", ">pw", "~*", "&*", "+@all", "-client|kill"
        )
        url = redis_process.url.replace("redis://", "redis://nokill:pw@")
        async with await RedisBackend.open(url) as backend:
            conn = backend._ctx.commands
            await backend.append([Entry(stream_id, "warm", b"0")])
            with caplog.at_level(logging.WARNING, logger="streamsink_redis"):
                for i in range(2):
                    lose_replies(conn, error=TimeoutError)  # open server-side: to be killed
                    await backend.append([Entry(stream_id, "x", b"%d" % i)])
            warnings = [r for r in caplog.records if "CLIENT KILL" in r.getMessage()]
            assert len(warnings) == 1
            assert not conn.fencing
            assert conn.appender.statistics.found == 2
        assert await admin.xlen(KEY.format(stream_id)) == 3
    finally:
        await admin.execute_command("ACL", "DELUSER", "nokill")
        await admin.aclose()


# -- the script alone ------------------------------------------------------------------------------


async def _server_ms(raw: aioredis.Redis) -> int:
    seconds, micros = await raw.execute_command("TIME")
    return int(seconds) * 1000 + int(micros) // 1000


def _script_for(key: str, values: list[bytes], *, floor_ms: int, **options: Any) -> list[Any]:
    commands = [xadd_args(key, Entry("s", "x", value), 0, value) for value in values]
    return resolve_args(
        key,
        [(c[-1], c[3:]) for c in commands],
        maxlen=options.pop("maxlen", 0),
        floor_ms=floor_ms,
        **options,
    )


Run = Callable[[list[Any], int], Awaitable[list[tuple[str, str]]]]


@pytest.fixture
def run_script(raw: aioredis.Redis) -> Run:
    async def run(args: list[Any], count: int) -> list[tuple[str, str]]:
        reply = resolved(await raw.eval(args[1], 1, *args[3:]), count)
        return [(e.outcome, e.value) for e in reply.entries]

    return run


async def test_script_found_added_and_order(
    raw: aioredis.Redis, stream_id: str, run_script: Run
) -> None:
    """Found entries return their ids; missing ones are appended (MAXLEN kept), after the ones
    found; a missing entry *before* a found one of the same batch is reported, not appended
    out of order."""
    key = KEY.format(stream_id)
    floor = await _server_ms(raw) - 1000
    written = (await raw.execute_command(*xadd_args(key, Entry("s", "x", b"a"), 0, b"a"))).decode()
    assert await run_script(_script_for(key, [b"a", b"b"], floor_ms=floor), 2) == [
        ("found", written),
        ("added", (await raw.xrange(key))[-1][0].decode()),
    ]
    assert await raw.xlen(key) == 2
    assert await run_script(_script_for(key, [b"c", b"a"], floor_ms=floor), 2) == [
        ("unknown", "a later entry of the same batch was written but this one was not"),
        ("found", written),
    ]
    assert await raw.xlen(key) == 2
    # The script's XADD trims as the first attempt's does (MAXLEN ~: whole nodes of 100).
    other = key + "-long"
    for i in range(150):
        await raw.xadd(other, {"n": "x", "p": b"%d" % i})
    floor = await _server_ms(raw) - 1000
    await run_script(_script_for(other, [b"last"], floor_ms=floor, maxlen=10), 1)
    assert await raw.xlen(other) < 100


async def test_script_is_inconclusive_when_it_cannot_see_the_window(
    raw: aioredis.Redis, stream_id: str, run_script: Run
) -> None:
    """Not found is only trusted when the scan reached the floor and nothing since the floor
    can have been removed: a short budget, XDEL and trimming each make it 'unknown'."""
    key = KEY.format(stream_id)
    floor = await _server_ms(raw) - 1000
    for value in (b"1", b"2", b"3"):
        await raw.execute_command(*xadd_args(key, Entry("s", "x", value), 0, value))
    budget = await run_script(_script_for(key, [b"new"], floor_ms=floor, budget=2), 1)
    assert budget[0][0] == "unknown"
    assert "scanned 2 entries" in budget[0][1]
    assert (await run_script(_script_for(key, [b"new"], floor_ms=floor), 1))[0][0] == "added"

    deleted = (await raw.xrange(key))[1][0]
    await raw.xdel(key, deleted)
    gone = await run_script(_script_for(key, [b"2"], floor_ms=floor), 1)
    assert gone == [
        ("unknown", "entries at or after the time of the lost attempt were deleted (XDEL)")
    ]

    other = key + "-t"
    for value in (b"1", b"2", b"3"):
        await raw.execute_command(*xadd_args(other, Entry("s", "x", value), 0, value))
    await raw.execute_command("XTRIM", other, "MAXLEN", "1")
    trimmed = await run_script(_script_for(other, [b"1"], floor_ms=floor), 1)
    assert trimmed == [("unknown", "the stream was trimmed past the time of the lost attempt")]
    # Trimmed, but only before the floor: still conclusive.
    later = await _server_ms(raw) + 1
    assert (await run_script(_script_for(other, [b"x"], floor_ms=later), 1))[0][0] == "added"


async def test_script_on_a_missing_stream_appends(
    raw: aioredis.Redis, stream_id: str, run_script: Run
) -> None:
    """No stream (never created, or deleted since): the entry is appended, creating it."""
    key = KEY.format(stream_id)
    floor = await _server_ms(raw) - 1000
    assert (await run_script(_script_for(key, [b"a"], floor_ms=floor), 1))[0][0] == "added"
    assert await raw.xlen(key) == 1
