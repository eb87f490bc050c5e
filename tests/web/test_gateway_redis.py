"""The SSE gateway on Redis (fakeredis and a real redis-server): frames, resume, a gap after
trimming, and epochs after a destroy and re-creation, a FLUSHALL, and a restart without
persistence."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import anyio
import pytest
import redis.asyncio as aioredis

from streamsink_redis import RedisBackend
from tests.support.redis_server import RedisServer
from tests.web.asgi import get, request
from tests.web.support import append, envelope, gateway

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis.asyncio


@pytest.fixture(params=["fakeredis", "redis"])
def url(request: pytest.FixtureRequest) -> str:
    if request.param == "fakeredis":
        return f"fakeredis://web-{uuid.uuid4().hex[:10]}"
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
def stream_id() -> str:
    return f"session/{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def backend(url: str, stream_id: str) -> AsyncIterator[RedisBackend]:
    backend = await RedisBackend.open(url)
    try:
        yield backend
    finally:
        await backend.destroy(stream_id)
        await backend.aclose()


def _url(stream_id: str) -> str:
    return "/streams/" + stream_id.replace("/", "%2F")


async def test_frames_and_resume_after_an_entry(backend: RedisBackend, stream_id: str) -> None:
    ids = await append(backend, stream_id, 4)
    async with gateway(backend) as app:
        headers = [("last-event-id", ids[1])]
        async with request(app, _url(stream_id), headers=headers) as response:
            assert (await response.next_frame()).fields == {"retry": "2000"}
            frames = [await response.next_frame() for _ in ids[2:]]
        bad = await get(app, _url(stream_id) + "?after=12-x")
    assert [(f.id, f.event) for f in frames] == [(i, "tool_start") for i in ids[2:]]
    assert [f.data for f in frames] == [envelope("tool_start", i).decode() for i in (2, 3)]
    assert bad.status == 400
    assert bad.text.startswith("after: ")


async def test_a_resume_past_trimming_is_a_gap_not_an_epoch(url: str, stream_id: str) -> None:
    trimmed = await RedisBackend.open(url + ("&" if "?" in url else "?") + "maxlen=10")
    try:
        ids = await append(trimmed, stream_id, 500)
        async with (
            gateway(trimmed) as app,
            request(app, f"{_url(stream_id)}?after={ids[0]}") as response,
        ):
            await response.next_frame()
            gap = await response.next_frame()
            first = await response.next_frame()
        report = json.loads(gap.data or "")
        assert gap.event == "gap"
        assert report["after"] == ids[0]
        assert report["before"] == first.id
        assert first.id in ids[250:]
    finally:
        await trimmed.destroy(stream_id)
        await trimmed.aclose()


async def test_epoch_after_destroy_and_recreate(backend: RedisBackend, stream_id: str) -> None:
    old = await append(backend, stream_id, 3)
    await backend.destroy(stream_id)
    # A stream re-created within the same millisecond may repeat the old ids (docs/web.md).
    await anyio.sleep(0.003)
    new = await append(backend, stream_id, 2, first=3)
    async with gateway(backend) as app:
        url = f"{_url(stream_id)}?last_event_id={old[-1]}"
        async with request(app, url) as response:
            await response.next_frame()
            epoch = await response.next_frame()
            frames = [await response.next_frame() for _ in new]
    assert epoch.event == "epoch"
    assert json.loads(epoch.data or "")["reason"] in ("after_last", "before_first")
    assert [f.id for f in frames] == new


async def _lost_then_epoch(server: RedisServer, lose: str) -> None:
    stream_id = f"session/{uuid.uuid4().hex[:8]}"
    backend = await RedisBackend.open(server.url)
    try:
        old = await append(backend, stream_id, 3)
        if lose == "flushall":
            raw = aioredis.from_url(server.url)
            try:
                await raw.flushall()
            finally:
                await raw.aclose()
        else:
            server.restart()  # no persistence: the server comes back empty
        async with gateway(backend) as app:
            headers = [("last-event-id", old[-1])]
            async with request(app, _url(stream_id), headers=headers) as response:
                await response.next_frame()
                epoch = await response.next_frame()
                sent = await append(backend, stream_id, 2, first=3)
                frames = [await response.next_frame() for _ in sent]
        assert json.loads(epoch.data or "") == {"reason": "missing", "after": old[-1]}
        assert [f.id for f in frames] == sent
    finally:
        await backend.aclose()


@pytest.mark.redis
async def test_epoch_after_flushall(redis_process: RedisServer) -> None:
    await _lost_then_epoch(redis_process, "flushall")


@pytest.mark.redis
async def test_epoch_after_a_restart_without_persistence(redis_process: RedisServer) -> None:
    await _lost_then_epoch(redis_process, "restart")
