"""What the gateway tests share: envelopes written byte for byte, a gateway on a backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from streamsink.backend import Backend, Entry
from streamsink.web import GatewayOptions, SSEGateway


def envelope(type_: str, index: int, *, run_id: str = "run-1") -> bytes:
    """An envelope as a Go runtime could write it, with a space after a colon: byte-exactness
    shows in the frame (a re-encoding would drop it)."""
    return (
        b'{"type":"%s","event_key":"k%d","run_id":"%s","session_id":"s",'
        b'"timestamp":"2024-05-01T10:00:00.123456789Z","payload": {"index":%d}}'
        % (type_.encode(), index, run_id.encode(), index)
    )


async def append(
    backend: Backend, stream_id: str, count: int, *, first: int = 0, type_: str = "tool_start"
) -> list[str]:
    """Append ``count`` envelopes; their entry ids."""
    entries = [Entry(stream_id, type_, envelope(type_, i)) for i in range(first, first + count)]
    return await backend.append(entries)


async def append_one(backend: Backend, stream_id: str, type_: str, index: int, **kw: Any) -> str:
    (entry_id,) = await backend.append([Entry(stream_id, type_, envelope(type_, index, **kw))])
    return entry_id


@asynccontextmanager
async def gateway(backend: Backend, **options: Any) -> AsyncIterator[SSEGateway]:
    """A gateway on ``backend``, shut down afterwards."""
    app = SSEGateway(backend, GatewayOptions(**options))
    try:
        yield app
    finally:
        await app.shutdown()
