"""Caller-owned clients (RESP2 and RESP3, real and fake) and named fakeredis servers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import fakeredis
import pytest
import redis.asyncio as aioredis
import redis.client

from streamsink import ConfigurationError
from streamsink.backend import Entry, StartPosition
from streamsink_redis import RedisBackend, RedisOptions

pytestmark = pytest.mark.anyio

OLDEST = StartPosition.oldest()


@pytest.fixture(params=["resp2", "resp3", "fakeredis"])
async def client(request: pytest.FixtureRequest) -> AsyncIterator[aioredis.Redis]:
    """A client the test owns: real Redis over RESP2 or RESP3, or fakeredis."""
    made: aioredis.Redis
    if request.param == "fakeredis":
        made = fakeredis.FakeAsyncRedis()
    else:
        url = request.getfixturevalue("redis_url")
        made = aioredis.Redis.from_url(url, protocol=2 if request.param == "resp2" else 3)
    try:
        yield made
    finally:
        await made.aclose()


async def test_caller_owned_client_works_and_is_left_open(
    client: aioredis.Redis, stream_id: str
) -> None:
    """The whole flow works on the caller's client, whatever its protocol; aclose keeps it open."""
    backend = RedisBackend.from_client(client, options=RedisOptions(maxlen=50))
    c1 = await backend.open_group_consumer(stream_id, "g", "c1", OLDEST)
    c2 = await backend.open_group_consumer(stream_id, "g", "c2", OLDEST)
    reader = await backend.open_reader(stream_id, StartPosition.newest())
    ids = await backend.append([Entry(stream_id, f"e{i}", b"%d" % i, "t") for i in range(3)])
    assert [(r.entry_id, r.topic) for r in await c1.read_new(10, 1)] == [(i, "t") for i in ids]
    assert [r.delivery_count for r in await c1.read_own_pending(None, 10)] == [2, 2, 2]
    await c1.nack(ids[:1])
    assert [(r.entry_id, r.delivery_count) for r in await c2.claim_idle(30, 10)] == [(ids[0], 3)]
    await c2.ack(ids[:1])
    assert [r.entry_id for r in await reader.read(10, 1)] == ids
    await backend.destroy(stream_id)
    await backend.aclose()
    assert await client.ping()
    assert await client.exists(f"pulse:stream:{stream_id}") == 0


async def test_from_client_refuses_unusable_clients(redis_url: str) -> None:
    """A sync client, decode_responses=True or connection options are refused with a reason."""
    with pytest.raises(ConfigurationError, match=r"redis\.asyncio\.Redis"):
        RedisBackend.from_client(redis.client.Redis.from_url(redis_url))  # type: ignore[arg-type]
    decoding = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        with pytest.raises(ConfigurationError, match="decode_responses=False"):
            RedisBackend.from_client(decoding)
    finally:
        await decoding.aclose()
    plain = aioredis.Redis.from_url(redis_url)
    try:
        with pytest.raises(ConfigurationError, match="socket_timeout, max_connections"):
            RedisBackend.from_client(
                plain, options=RedisOptions(socket_timeout=1, max_connections=3)
            )
        backend = RedisBackend.from_client(plain)
        assert backend.description.startswith("redis://")
        assert "redis://" in repr(backend)
    finally:
        await plain.aclose()


async def test_fakeredis_names_share_data(stream_id: str) -> None:
    """Backends on one fakeredis URL share data (names are case-insensitive), others do not."""
    async with (
        await RedisBackend.open("fakeredis://share-a") as a1,
        await RedisBackend.open("fakeredis://Share-A") as a2,
        await RedisBackend.open("fakeredis://share-b") as b,
        await RedisBackend.open("fakeredis://") as default1,
        await RedisBackend.open("fakeredis://") as default2,
    ):
        readers = [await x.open_reader(stream_id, OLDEST) for x in (a2, b, default1)]
        ids = await a1.append([Entry(stream_id, "x", b"{}")])
        seen = [[r.entry_id for r in await reader.read(10, 0)] for reader in readers]
        assert seen == [ids, [], []]
        shared = await default2.append([Entry(stream_id, "y", b"{}")])
        assert [r.entry_id for r in await readers[2].read(10, 0)] == shared
        assert a1.capabilities.persistent is False
        assert a1.capabilities.trio is False
