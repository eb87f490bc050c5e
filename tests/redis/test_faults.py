"""Real failures: FLUSHALL, a killed and restarted server, a crash with persistence on."""

from __future__ import annotations

import uuid

import anyio
import pytest

from streamsink import BackendUnavailableError
from streamsink.backend import Entry, GroupLostError, StartPosition
from streamsink_redis import RedisBackend
from streamsink_redis._connection import fake_server
from tests.support.redis_server import RedisServer

from .conftest import raw_client_for, with_query

pytestmark = pytest.mark.anyio

OLDEST = StartPosition.oldest()
FAST = {"socket_timeout": 1, "socket_connect_timeout": 1}


@pytest.fixture(params=["fakeredis", "redis"])
def flushable_url(request: pytest.FixtureRequest) -> str:
    """A URL whose data this test may wipe: a fresh fakeredis server or a private redis-server."""
    if request.param == "fakeredis":
        return f"fakeredis://flush-{uuid.uuid4().hex[:8]}"
    server: RedisServer = request.getfixturevalue("redis_process")
    return server.url


async def test_flushall_loses_the_group_and_ensure_group_heals(
    flushable_url: str, stream_id: str
) -> None:
    """After FLUSHALL reads raise GroupLostError (not a hot loop), and ensure_group recovers."""
    async with await RedisBackend.open(flushable_url) as backend:
        consumer = await backend.open_group_consumer(stream_id, "g", "c", OLDEST)
        await backend.append([Entry(stream_id, "before", b"{}")])
        raw = raw_client_for(flushable_url)
        try:
            await raw.flushall()
        finally:
            await raw.aclose()
        with pytest.raises(GroupLostError):
            await consumer.read_new(10, 0.05)
        await consumer.ensure_group(OLDEST)
        ids = await backend.append([Entry(stream_id, "after", b"{}")])
        assert [r.entry_id for r in await consumer.read_new(10, 0)] == ids


async def test_killed_server_is_unavailable_then_everything_works_again(
    redis_process: RedisServer, stream_id: str
) -> None:
    """A dead server raises BackendUnavailableError; after a restart the same handles work."""
    async with await RedisBackend.open(with_query(redis_process.url, **FAST)) as backend:
        consumer = await backend.open_group_consumer(stream_id, "g", "c", OLDEST)
        reader = await backend.open_reader(stream_id, OLDEST)
        await backend.append([Entry(stream_id, "before", b"{}")])
        assert len(await consumer.read_new(10, 0)) == 1
        assert len(await reader.read(10, 0)) == 1

        redis_process.kill()
        start = anyio.current_time()
        for call in (
            lambda: consumer.read_new(10, 0.1),
            lambda: consumer.ack(["1-0"]),
            lambda: consumer.claim_idle(0, 10),
            lambda: reader.read(10, 0.1),
            lambda: backend.append([Entry(stream_id, "lost", b"{}")]),
        ):
            with pytest.raises(BackendUnavailableError) as info:
                await call()
            assert not isinstance(info.value, GroupLostError)
        assert anyio.current_time() - start < 3

        redis_process.restart()  # no persistence: stream and group are gone
        ids = await backend.append([Entry(stream_id, "after", b"{}")])
        with pytest.raises(GroupLostError):
            await consumer.read_new(10, 0)
        await consumer.ensure_group(OLDEST)
        assert [r.entry_id for r in await consumer.read_new(10, 0)] == ids
        assert [r.entry_id for r in await reader.read(10, 0)] == ids


async def test_server_killed_during_a_blocked_read(
    redis_process: RedisServer, stream_id: str
) -> None:
    """A read blocked when the server dies fails promptly with BackendUnavailableError."""
    async with await RedisBackend.open(with_query(redis_process.url, **FAST)) as backend:
        consumer = await backend.open_group_consumer(stream_id, "g", "c", OLDEST)
        failures: list[BaseException] = []

        async def read() -> None:
            try:
                await consumer.read_new(10, 5)
            except BackendUnavailableError as exc:
                failures.append(exc)

        start = anyio.current_time()
        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await anyio.sleep(0.1)
            redis_process.kill()
        assert len(failures) == 1
        assert anyio.current_time() - start < 1.5


async def test_pending_entries_survive_a_crash(durable_server: RedisServer, stream_id: str) -> None:
    """With appendfsync always, a SIGKILLed server keeps entries and the PEL, which the same
    consumer name drains after the restart."""
    async with await RedisBackend.open(with_query(durable_server.url, **FAST)) as backend:
        consumer = await backend.open_group_consumer(stream_id, "g", "worker", OLDEST)
        ids = await backend.append([Entry(stream_id, f"e{i}", b"{}") for i in range(3)])
        await consumer.read_new(10, 0)
        await consumer.ack(ids[:1])
        durable_server.kill()
        durable_server.restart()
        drained = await consumer.read_own_pending(None, 10)
        assert [(r.entry_id, r.delivery_count) for r in drained] == [(ids[1], 2), (ids[2], 2)]


async def test_fakeredis_outage_surfaces_as_unavailable(stream_id: str) -> None:
    """A disconnected fakeredis server raises BackendUnavailableError, then works again."""
    name = f"outage-{uuid.uuid4().hex[:8]}"
    async with await RedisBackend.open(f"fakeredis://{name}") as backend:
        consumer = await backend.open_group_consumer(stream_id, "g", "c", OLDEST)
        server = fake_server(name)
        server.connected = False
        try:
            with pytest.raises(BackendUnavailableError):
                await backend.append([Entry(stream_id, "x", b"{}")])
            with pytest.raises(BackendUnavailableError):
                await consumer.read_new(10, 0.05)
        finally:
            server.connected = True
        ids = await backend.append([Entry(stream_id, "x", b"{}")])
        assert [r.entry_id for r in await consumer.read_new(10, 0)] == ids
