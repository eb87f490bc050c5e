"""Retention beyond ``maxlen`` on Redis: ``max_age`` (XTRIM MINID ~ by the server's clock) and
``idle_ttl`` (PEXPIRE on every append), sent in the append's round trip."""

from __future__ import annotations

import anyio
import pytest
import redis.asyncio as aioredis

from streamsink import ConfigurationError, StartPosition
from streamsink.backend import Entry, GroupLostError
from streamsink_redis import RedisBackend
from streamsink_redis._options import RedisOptions

from .conftest import OpenBackend

pytestmark = pytest.mark.anyio


def _entries(stream_id: str, count: int) -> list[Entry]:
    return [Entry(stream_id, "e", b"%d" % i) for i in range(count)]


async def test_without_retention_options_appends_set_no_ttl(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """The defaults are off: no retention command rides along, the key never expires."""
    assert backend._ctx.commands.appender.retention is None
    await backend.append(_entries(stream_id, 2))
    assert await raw.pttl(backend.key(stream_id)) == -1


async def test_idle_ttl_is_set_and_refreshed_by_every_append(
    open_backend: OpenBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """Each append sets the key to expire ``idle_ttl`` after it; then it is gone."""
    backend = await open_backend(idle_ttl=0.3, maxlen=0)
    key = backend.key(stream_id)
    await backend.append(_entries(stream_id, 1))
    assert 0 < await raw.pttl(key) <= 300
    for _ in range(3):
        await anyio.sleep(0.15)
        await backend.append(_entries(stream_id, 2))  # a batch: one PEXPIRE for its key
    assert await raw.xlen(key) == 7
    await anyio.sleep(0.4)
    assert await raw.exists(key) == 0


async def test_max_age_trims_entries_older_than_it_on_append(
    open_backend: OpenBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """Old entries go by whole nodes (``~``) at the next append; new ones stay. The script
    runs again from its text after the server's script cache was emptied."""
    backend = await open_backend(max_age=0.2, maxlen=0)
    key = backend.key(stream_id)
    await backend.append(_entries(stream_id, 300))  # several stream nodes
    assert await raw.xlen(key) == 300
    for flush in (False, True):
        await anyio.sleep(0.3)
        if flush:
            await raw.script_flush()
        (newest,) = await backend.append(_entries(stream_id, 1))
        kept = [entry_id.decode() for entry_id, _ in await raw.xrange(key)]
        assert kept[-1] == newest
        assert len(kept) < 100, f"{len(kept)} entries kept"
        await backend.append(_entries(stream_id, 300))
    assert await raw.pttl(key) == -1  # max_age alone sets no TTL


async def test_max_age_and_idle_ttl_together(
    open_backend: OpenBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    """The script trims and sets the TTL in one command."""
    backend = await open_backend(max_age=60, idle_ttl=30)
    await backend.append(_entries(stream_id, 3))
    key = backend.key(stream_id)
    assert await raw.xlen(key) == 3
    assert 29_000 < await raw.pttl(key) <= 30_000


async def test_a_group_read_on_an_expired_stream_finds_its_group_lost(
    open_backend: OpenBackend, stream_id: str
) -> None:
    """The group lived in the key: once it expired, reads raise GroupLostError (a blocked one
    too), and ensure_group heals it, as after a deletion by someone else."""
    backend = await open_backend(idle_ttl=0.2, block_ms=2000)
    consumer = await backend.open_group_consumer(stream_id, "g", "c", StartPosition.oldest())
    await backend.append(_entries(stream_id, 1))
    assert len(await consumer.read_new(10, 0)) == 1
    with anyio.fail_after(5), pytest.raises(GroupLostError):
        await consumer.read_new(10, 1.5)  # blocked when the key expires, or read after it did
    await consumer.ensure_group(StartPosition.oldest())
    await backend.append(_entries(stream_id, 1))
    records = await consumer.read_new(10, 0)
    assert len(records) == 1
    await consumer.ack([records[0].entry_id])  # owning nothing, it leaves the group on close
    await consumer.aclose()
    await anyio.sleep(0.3)  # the key expires again: nothing of the group is left behind


def test_retention_options_parse_and_name_bad_values() -> None:
    """Seconds, 0 = off (the default); a bad value names the option, value and expectation."""
    options = RedisOptions.from_query({"max_age": "3600", "idle_ttl": "0.5"})
    assert (options.max_age, options.idle_ttl) == (3600, 0.5)
    assert (RedisOptions().max_age, RedisOptions().idle_ttl) == (0, 0)
    with pytest.raises(ConfigurationError) as caught:
        RedisOptions.from_query({"idle_ttl": "a day"})
    assert str(caught.value) == (
        "RedisOptions.idle_ttl='a day' is invalid: expected a number of seconds >= 0.001, or 0 "
        "for off"
    )
    with pytest.raises(ConfigurationError, match=r"max_age=-5\.0 is invalid"):
        RedisOptions.from_query({"max_age": "-5"}, scheme="fakeredis")
