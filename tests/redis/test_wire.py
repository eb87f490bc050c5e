"""Wire compatibility with goa.design/pulse: keys, fields, trimming, and Go-written entries."""

from __future__ import annotations

import re
from typing import Any

import fakeredis
import pytest
import redis.asyncio as aioredis

from streamsink import ConfigurationError
from streamsink.backend import Entry, Record, StartPosition
from streamsink.backend.redis_ids import parse_entry_id
from streamsink_redis import RedisBackend
from streamsink_redis import _wire as wire
from streamsink_redis._wire import xadd_args

from .conftest import OpenBackend

pytestmark = pytest.mark.anyio

KEY = "pulse:stream:{}"


def test_xadd_arguments_are_pulse_s() -> None:
    """XADD is ``key MAXLEN ~ n * n <name> p <payload> [t <topic>] [i <value>]``: pulse's
    fields first, streamsink's idempotency field last; no MAXLEN when 0."""
    entry = Entry("s", "tool_end", b"{}", topic="ops")
    assert xadd_args("pulse:stream:s", entry, 1000, b"v1") == [
        "XADD", "pulse:stream:s", "MAXLEN", "~", "1000", "*",
        b"n", "tool_end", b"p", b"{}", b"t", "ops", b"i", b"v1",
    ]  # fmt: skip
    assert xadd_args("k", Entry("s", "x", b"1"), 0, b"v2") == [
        "XADD", "k", "*", b"n", "x", b"p", b"1", b"i", b"v2",
    ]  # fmt: skip
    assert xadd_args("k", Entry("s", "x", b"1"), 0) == ["XADD", "k", "*", b"n", "x", b"p", b"1"]


@pytest.mark.parametrize(
    "bad",
    ["", "a b", "a\x00b", "a*", "what?", "[x", "x]", "x" * 513, None, 42],
)
def test_stream_ids_are_validated_as_pulse_does(bad: object) -> None:
    """Stream ids are 1-512 characters without space, NUL, '*', '?', '[' or ']'."""
    backend = RedisBackend.from_client(fakeredis.FakeAsyncRedis())
    with pytest.raises(ConfigurationError, match="stream id"):
        backend.key(bad)  # type: ignore[arg-type]


def test_valid_stream_ids_pass() -> None:
    """Session-style ids, colons, unicode and 512 characters are fine."""
    backend = RedisBackend.from_client(fakeredis.FakeAsyncRedis())
    for good in ("session/abc", "toolset:x:requests", "é/ü", "x" * 512):
        assert backend.key(good) == "pulse:stream:" + good


async def test_entries_land_exactly_as_pulse_writes_them(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """A raw client sees fields n, p (and t) under pulse:stream:<id>, with the returned ids, then
    the idempotency field i: a short value, unique per entry, sharing this backend's prefix."""
    ids = await backend.append(
        [Entry(stream_id, "tool_start", b'{"a":1}'), Entry(stream_id, "usage", b"\xff", "t1")]
    )
    ids += await backend.append([Entry(stream_id, "x", b"1")])
    rows = await raw.xrange(KEY.format(stream_id))
    fields = [list(row[1].items()) for row in rows]
    assert [row[0].decode() for row in rows] == ids
    assert [pairs[:-1] for pairs in fields] == [
        [(b"n", b"tool_start"), (b"p", b'{"a":1}')],
        [(b"n", b"usage"), (b"p", b"\xff"), (b"t", b"t1")],
        [(b"n", b"x"), (b"p", b"1")],
    ]
    values = [pairs[-1][1] for pairs in fields]
    assert [pairs[-1][0] for pairs in fields] == [b"i"] * 3
    assert len(set(values)) == 3
    assert all(re.fullmatch(rb"[A-Za-z0-9_-]{11}[0-9a-f]+", value) for value in values)
    assert len({value[:11] for value in values}) == 1
    assert await raw.keys("*" + stream_id) == [KEY.format(stream_id).encode()]


async def test_backends_draw_their_own_idempotency_prefix(
    open_backend: OpenBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """Two producers on one stream never share an idempotency value."""
    first, second = await open_backend(), await open_backend()
    await first.append([Entry(stream_id, "x", b"1")])
    await second.append([Entry(stream_id, "x", b"2")])
    rows = await raw.xrange(KEY.format(stream_id))
    assert rows[0][1][b"i"][:11] != rows[1][1][b"i"][:11]


def test_reads_take_streamsink_s_layout_on_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """``n p i`` entries (streamsink's) and ``n p`` entries (pulse's) become records without the
    field-by-field path; other layouts still go through it."""
    reply = [
        [b"k", [
            (b"1-0", [b"n", b"a", b"p", b"{}", b"i", b"v1"]),
            (b"2-0", [b"n", b"b", b"p", b"[]"]),
        ]],
    ]  # fmt: skip
    monkeypatch.setattr(wire, "record", None)  # the field-by-field path would fail now
    assert wire.records_of_read(reply) == [Record("1-0", "a", b"{}"), Record("2-0", "b", b"[]")]
    monkeypatch.undo()
    other = [[b"k", [(b"3-0", [b"n", b"c", b"p", b"{}", b"t", b"x", b"i", b"v3"])]]]
    assert wire.records_of_read(other) == [Record("3-0", "c", b"{}", topic="x")]


async def test_key_prefix_is_configurable(
    open_backend: OpenBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """key_prefix replaces pulse:stream: in the key."""
    backend = await open_backend(key_prefix="app:")
    await backend.append([Entry(stream_id, "x", b"1")])
    assert await raw.exists(f"app:{stream_id}") == 1
    assert backend.key(stream_id) == f"app:{stream_id}"


async def test_maxlen_trims_approximately(
    open_backend: OpenBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """With maxlen=10 a stream stays near 10 entries; maxlen=0 never trims."""
    bounded = await open_backend(maxlen=10)
    unbounded = await open_backend(maxlen=0)
    for _ in range(6):
        await bounded.append([Entry(stream_id, "x", b"1")] * 50)
        await unbounded.append([Entry(stream_id + "u", "x", b"1")] * 50)
    assert 10 <= await raw.xlen(KEY.format(stream_id)) < 300
    assert await raw.xlen(KEY.format(stream_id + "u")) == 300


async def test_append_returns_ordered_ids_across_streams(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """Ids come back in input order and increase per stream, for entries on several streams."""
    other = stream_id + "-b"
    entries = [Entry(s, f"e{i}", b"%d" % i) for i, s in enumerate([stream_id, other] * 5)]
    ids = await backend.append(entries)
    for sid in (stream_id, other):
        mine = [i for i, e in zip(ids, entries, strict=True) if e.stream_id == sid]
        assert mine == sorted(mine, key=parse_entry_id)
        stored = await raw.xrange(KEY.format(sid))
        assert [i.decode() for i, _ in stored] == mine
    assert await backend.append([]) == []


async def test_append_is_one_round_trip(
    backend: RedisBackend, monkeypatch: pytest.MonkeyPatch, stream_id: str
) -> None:
    """All XADDs of one append go out together: one call of the command connection, which
    packs them into one write and reads their replies in order (no MULTI)."""
    commands = backend._ctx.commands
    made: list[list[Any]] = []
    real_attempt = commands.attempt

    async def spy(batch: Any) -> Any:
        made.append([command[0] for command in batch])
        return await real_attempt(batch)

    monkeypatch.setattr(commands, "attempt", spy)
    ids = await backend.append([Entry(stream_id, "x", b"1")] * 20)
    assert made == [["XADD"] * 20]
    assert len(set(ids)) == 20


async def test_invalid_entry_writes_nothing(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """One bad stream id or entry in a batch refuses the whole batch before writing."""
    for bad in (Entry("bad id", "x", b"1"), Entry(stream_id, "", b"1")):
        with pytest.raises(ConfigurationError):
            await backend.append([Entry(stream_id, "x", b"1"), bad])
    with pytest.raises(ConfigurationError, match="payload must be bytes"):
        await backend.append([Entry(stream_id, "x", "text")])  # type: ignore[arg-type]
    assert await raw.exists(KEY.format(stream_id)) == 0


async def test_entries_from_a_go_producer_are_read_back(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """Entries XADDed as pulse's Go producer does (and malformed ones) read back field by field."""
    key = KEY.format(stream_id)
    envelope = b'{"type":"tool_end","run_id":"r1","timestamp":"2024-05-01T10:00:00.123456789Z"}'
    written = [
        await raw.execute_command(
            "XADD", key, "MAXLEN", "~", "1000", "*", "n", "tool_end", "p", envelope
        ),
        await raw.execute_command("XADD", key, "*", "n", "usage", "p", b"{}", "t", "metrics"),
        await raw.execute_command("XADD", key, "*", "n", "only-name"),
        await raw.execute_command("XADD", key, "*", "p", b"only-payload", "x", "extra"),
        await raw.execute_command("XADD", key, "*", "n", b"\xff\xfe", "p", b"bad-name"),
        await raw.execute_command("XADD", key, "*", "p", b"swapped", "n", "late-name"),
    ]
    ids = [i.decode() for i in written]
    expected = [
        Record(ids[0], "tool_end", envelope),
        Record(ids[1], "usage", b"{}", topic="metrics"),
        Record(ids[2], "only-name", None),
        Record(ids[3], None, b"only-payload"),
        Record(ids[4], None, b"bad-name"),
        Record(ids[5], "late-name", b"swapped"),
    ]
    consumer = await backend.open_group_consumer(stream_id, "py", "c1", StartPosition.oldest())
    reader = await backend.open_reader(stream_id, StartPosition.oldest())
    assert list(await consumer.read_new(10, 0)) == expected
    assert list(await reader.read(10, 0)) == expected
