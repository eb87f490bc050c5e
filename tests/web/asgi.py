"""A small ASGI client for the gateway tests: it drives the app directly (httpx's ASGITransport
runs the app to completion before it returns a response, so it cannot read an endless stream),
hands out the body as it is sent, parses SSE frames, and disconnects on exit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import anyio
import attrs

TIMEOUT = 5.0  # bound on every wait of these tests: nothing expected takes this long


@attrs.define
class Frame:
    """One SSE frame: its fields (``data`` lines joined with newlines) and comments."""

    fields: dict[str, str] = attrs.field(factory=dict)
    comments: list[str] = attrs.field(factory=list)

    @property
    def event(self) -> str | None:
        return self.fields.get("event")

    @property
    def id(self) -> str | None:
        return self.fields.get("id")

    @property
    def data(self) -> str | None:
        return self.fields.get("data")


def parse_frame(raw: bytes) -> Frame:
    frame = Frame()
    for line in raw.decode().split("\n"):
        if line.startswith(":"):
            frame.comments.append(line[1:].strip())
            continue
        name, _, value = line.partition(": ")
        if name == "data" and "data" in frame.fields:
            frame.fields["data"] += "\n" + value
        else:
            frame.fields[name] = value
    return frame


class Response:
    """The start of a response and its body, as the app sends it."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.started = anyio.Event()
        self.ended = anyio.Event()
        self.chunks: list[bytes] = []
        self.raw = b""  # bytes received, not yet parsed into frames
        self._more = anyio.Event()  # set when bytes arrive or the body ends

    async def on_send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {bytes(k).decode(): bytes(v).decode() for k, v in message["headers"]}
            self.started.set()
        elif message["type"] == "http.response.body":
            body = message.get("body", b"")
            self.chunks.append(body)
            self.raw += body
            if not message.get("more_body", False):
                self.ended.set()
            self._more.set()

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode()

    async def next_frame(self) -> Frame:
        """The next complete frame of the body (fails after TIMEOUT)."""
        with anyio.fail_after(TIMEOUT):
            while b"\n\n" not in self.raw:
                assert not self.ended.is_set(), f"the body ended; left: {self.raw!r}"
                await self._more.wait()
                self._more = anyio.Event()
        raw, _, self.raw = self.raw.partition(b"\n\n")
        return parse_frame(raw)

    async def frames_until(self, event: str) -> list[Frame]:
        """Frames up to and including the first of ``event``."""
        frames: list[Frame] = []
        while not frames or frames[-1].event != event:
            frames.append(await self.next_frame())
        return frames

    async def rest(self) -> list[Frame]:
        """Every frame until the body ends (fails after TIMEOUT)."""
        with anyio.fail_after(TIMEOUT):
            await self.ended.wait()
        frames = []
        for raw in self.raw.split(b"\n\n"):
            if raw:
                frames.append(parse_frame(raw))
        self.raw = b""
        return frames


def scope_of(
    method: str,
    url: str,
    headers: Sequence[tuple[str, str]],
    root_path: str = "",
) -> dict[str, Any]:
    from urllib.parse import unquote

    parts = urlsplit(url)
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(parts.path),
        "raw_path": parts.path.encode(),
        "root_path": root_path,
        "query_string": parts.query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


@asynccontextmanager
async def request(
    app: Any,
    url: str,
    *,
    method: str = "GET",
    headers: Sequence[tuple[str, str]] = (),
    root_path: str = "",
) -> AsyncIterator[Response]:
    """Send a request and yield the response once it started; on exit the client disconnects
    and the app must then return within TIMEOUT."""
    response = Response()
    disconnect = anyio.Event()
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def run() -> None:
        await app(scope_of(method, url, headers, root_path), receive, response.on_send)
        response.ended.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        with anyio.fail_after(TIMEOUT):
            await response.started.wait()
        try:
            yield response
        finally:
            disconnect.set()
            with anyio.fail_after(TIMEOUT):
                await response.ended.wait()


async def get(app: Any, url: str, **kwargs: Any) -> Response:
    """A whole response (for answers that end by themselves: refusals, pages)."""
    async with request(app, url, **kwargs) as response:
        with anyio.fail_after(TIMEOUT):
            await response.ended.wait()
    return response
