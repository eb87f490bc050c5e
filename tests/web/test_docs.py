"""The FastAPI and Starlette examples of docs/web.md run as written, on a real Redis: the app
they build serves a stream under /events, with the token, and shuts down through its lifespan."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis.asyncio as redis

from tests.web.asgi import get, request
from tests.web.support import append

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

DOC = Path(__file__).resolve().parents[2] / "docs" / "web.md"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _example(name: str) -> str:
    blocks = re.findall(r"```python\n(# example: (\w+)\n.*?)```", DOC.read_text(), re.S)
    (code,) = [code for code, found in blocks if found == name]
    return code


async def _lifespan(app: Any, phase: str, inbox: Any, outbox: list[dict[str, Any]]) -> None:
    await inbox.send({"type": f"lifespan.{phase}"})
    with anyio.fail_after(5):
        while not any(m["type"].startswith(f"lifespan.{phase}.") for m in outbox):  # noqa: ASYNC110
            await anyio.sleep(0.01)


@pytest.mark.parametrize("name", ["fastapi", "starlette"])
async def test_the_example_serves_a_stream(
    name: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("SSE_TOKEN", "docs-token")
    namespace: dict[str, Any] = {"__name__": f"docs_web_{name}"}
    exec(compile(_example(name), f"docs/web.md ({name})", "exec"), namespace)
    app, backend, gateway = namespace["app"], namespace["backend"], namespace["gateway"]
    stream = f"session/{uuid.uuid4().hex[:8]}"
    ids = await append(backend, stream, 2)
    key = backend.key(stream)
    token = "?token=docs-token&" if name == "fastapi" else "?"
    url = "/events/streams/" + stream.replace("/", "%2F") + token + "from=oldest"
    outbox: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        outbox.append(message)

    inbox, receive = anyio.create_memory_object_stream[dict[str, Any]](10)
    async with inbox, receive, anyio.create_task_group() as tg:
        tg.start_soon(app, {"type": "lifespan", "asgi": {"version": "3.0"}}, receive.receive, send)
        await _lifespan(app, "startup", inbox, outbox)
        if name == "fastapi":
            assert (await get(app, url.replace("docs-token", "wrong"))).status == 401
        async with request(app, url) as response:
            assert response.status == 200
            await response.next_frame()
            assert [(await response.next_frame()).id for _ in ids] == ids
            await _lifespan(app, "shutdown", inbox, outbox)  # ends the open response
            with anyio.fail_after(2):
                await response.ended.wait()
        assert gateway.open_responses == 0
    assert [m["type"] for m in outbox] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    raw = redis.Redis.from_url(redis_url)
    try:
        await raw.delete(key)
    finally:
        await raw.aclose()
