"""The gateway mounted under a prefix in Starlette and FastAPI, ``sse_frames`` in a FastAPI route,
and the gateway served by a real uvicorn on a free port (read with httpx), which must stop
promptly with a stream open."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi import Request as FastAPIRequest
from fastapi.responses import StreamingResponse
from starlette.applications import Starlette
from starlette.routing import Mount

from streamsink.web import SSEGateway, sse_frames
from streamsink_memory import MemoryBackend, MemoryBroker
from tests.web.asgi import TIMEOUT, get, parse_frame, request
from tests.web.support import append, append_one

pytestmark = pytest.mark.anyio

STREAM = "session/m1"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # uvicorn and the frameworks' test paths run on asyncio here


def _apps(gateway: SSEGateway) -> dict[str, Any]:
    fastapi_app = FastAPI()
    fastapi_app.mount("/events", gateway)
    return {
        "starlette": Starlette(routes=[Mount("/events", app=gateway)]),
        "fastapi": fastapi_app,
    }


@pytest.mark.parametrize("framework", ["starlette", "fastapi"])
async def test_mounted_under_a_prefix(framework: str) -> None:
    backend = MemoryBackend(MemoryBroker())
    ids = await append(backend, STREAM, 2)
    gateway = SSEGateway(backend)
    gateway.viewer = lambda stream_id: f"page {stream_id}"
    app = _apps(gateway)[framework]
    try:
        async with request(app, "/events/streams/session%2Fm1?from=oldest") as response:
            assert response.status == 200
            await response.next_frame()
            assert [(await response.next_frame()).id for _ in ids] == ids
        assert (await get(app, "/events/view/session%2Fm1")).text == "page session/m1"
        assert (await get(app, "/events/nothing")).status == 404
    finally:
        await gateway.shutdown()
    assert backend.broker.statistics().blocked_readers == 0


async def test_the_default_viewer_gets_the_mount_point_as_its_base_path() -> None:
    gateway = SSEGateway(MemoryBackend(MemoryBroker()))
    app = Starlette(routes=[Mount("/events", app=gateway)])
    page = await get(app, "/events/view/session%2Fm1")
    await gateway.shutdown()
    if page.status == 404:  # the viewer module is another change's; without it: 404
        pytest.skip("streamsink.web._viewer is not there")
    assert page.status == 200
    assert "/events" in page.text


async def test_sse_frames_in_a_fastapi_route_releases_its_reader_on_disconnect() -> None:
    backend = MemoryBackend(MemoryBroker())
    app = FastAPI()

    @app.get("/sessions/{session_id}/events")
    async def events(session_id: str, req: FastAPIRequest) -> StreamingResponse:
        frames = sse_frames(
            backend, f"session/{session_id}", last_event_id=req.headers.get("last-event-id")
        )
        return StreamingResponse(frames, media_type="text/event-stream")

    ids = await append(backend, STREAM, 3)
    headers = [("last-event-id", ids[0])]
    async with request(app, "/sessions/m1/events", headers=headers) as response:
        assert response.status == 200
        assert (await response.next_frame()).fields == {"retry": "2000"}
        assert [(await response.next_frame()).id for _ in ids[1:]] == ids[1:]
    with anyio.fail_after(TIMEOUT):
        # Starlette ends the body's task on the disconnect; nothing to wait on but the effect.
        while backend.broker.statistics().blocked_readers or backend._handles:  # noqa: ASYNC110
            await anyio.sleep(0.01)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _GatewayServer(uvicorn.Server):
    """uvicorn waits for open responses to end before it sends lifespan.shutdown, and tells a
    streaming response nothing: ending the gateway's responses first is what lets it stop
    (the recipe of docs/web.md)."""

    def __init__(self, config: uvicorn.Config, gateway: SSEGateway) -> None:
        super().__init__(config)
        self.gateway = gateway

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.gateway.shutdown()
        await super().shutdown(sockets)


@asynccontextmanager
async def _served(gateway: SSEGateway) -> AsyncIterator[tuple[uvicorn.Server, str]]:
    port = _free_port()
    config = uvicorn.Config(
        gateway, host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = _GatewayServer(config, gateway)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        with anyio.fail_after(TIMEOUT):
            while not server.started:  # noqa: ASYNC110 - uvicorn has no event for it
                await anyio.sleep(0.01)
        try:
            yield server, f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True


async def test_over_a_real_uvicorn_frames_stream_and_shutdown_is_prompt() -> None:
    backend = MemoryBackend(MemoryBroker())
    ids = await append(backend, STREAM, 1)
    gateway = SSEGateway(backend)
    async with (
        _served(gateway) as (server, base),
        httpx.AsyncClient(base_url=base, timeout=TIMEOUT) as client,
    ):
        refused = await client.get("/streams/session%2Fm1?after=nope")
        assert refused.status_code == 400
        url = "/streams/session%2Fm1"
        async with client.stream("GET", url, headers={"Last-Event-ID": ids[0]}) as response:
            assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
            chunks = response.aiter_raw()
            raw = b""
            later = await append_one(backend, STREAM, "assistant_reply", 1)
            with anyio.fail_after(TIMEOUT):
                while raw.count(b"\n\n") < 2:
                    raw += await anext(chunks)
            frames = [parse_frame(part) for part in raw.split(b"\n\n") if part]
            assert frames[0].fields == {"retry": "2000"}
            assert (frames[1].id, frames[1].event) == (later, "assistant_reply")
            # The server stops with this stream open: it must not wait for the client.
            server.should_exit = True
            with anyio.fail_after(2):
                rest = b"".join([chunk async for chunk in chunks])
    assert rest.endswith(b": the server is shutting down\n\n")
    assert gateway.open_responses == 0
