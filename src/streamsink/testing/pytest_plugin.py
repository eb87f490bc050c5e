"""streamsink's pytest plugin: fixtures for applications' test suites.

Installing streamsink registers it (entry point ``pytest11``), so the fixtures are there in every
suite without a ``conftest.py`` import; ``-p no:streamsink`` turns it off.

- ``streamsink_url``: the URL of a fresh ``memory://`` broker of this test alone;
- ``streamsink_streams``: :class:`~streamsink.RuntimeStreams` on that broker (an async fixture:
  the test runs under anyio's pytest plugin, ``@pytest.mark.anyio``, or pytest-asyncio); every
  stream the test made is destroyed afterwards;
- ``streamsink_clock``: a :class:`FakeClock` at 1000.0;
- ``recording_sink``: a :class:`RecordingSink`, closed afterwards;
- ``write_raw_entry``: :func:`streamsink.testing.write_raw_entry`, to write entries of any
  bytes (malformed envelopes) on any backend, for poison tests.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from .._runtime import RuntimeStreams, connect
from ._clock import FakeClock
from ._raw import write_raw_entry as _write_raw_entry
from ._recording import RecordingSink

__all__ = [
    "recording_sink",
    "streamsink_clock",
    "streamsink_streams",
    "streamsink_url",
    "write_raw_entry",
]


@pytest.fixture
def streamsink_url() -> str:
    """``memory://streamsink-test-<random>``: a broker no other test shares."""
    return f"memory://streamsink-test-{uuid.uuid4().hex}"


@pytest.fixture
async def streamsink_streams(streamsink_url: str) -> AsyncIterator[RuntimeStreams]:
    """Streams on this test's own memory broker; its streams are destroyed afterwards."""
    async with connect(streamsink_url) as streams:
        try:
            yield streams
        finally:
            backend: Any = streams.backend
            if backend.capabilities.operations:
                for stream_id in await backend.list_streams():
                    await backend.destroy(stream_id)


@pytest.fixture
def streamsink_clock() -> FakeClock:
    """Time that moves only when the test says so (``advance``, ``set``)."""
    return FakeClock(1000.0)


@pytest.fixture
def recording_sink() -> Iterator[RecordingSink]:
    """A sink that keeps what was sent (``.events``, ``.by_type()``) and writes nothing."""
    sink = RecordingSink()
    yield sink
    sink.closed = True


@pytest.fixture
def write_raw_entry() -> Callable[..., Any]:
    """``await write_raw_entry(streams_or_backend, stream_id, payload, name=..., topic=...)``."""
    return _write_raw_entry
