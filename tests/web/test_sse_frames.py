"""``sse_frames`` used directly, as an application with its own routing would: the same frames,
resume rules and refusals as the gateway, before any frame is produced."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing

import anyio
import pytest

from streamsink import ConfigurationError, StreamSubscriber, SubscriberOptions
from streamsink.web import GatewayOptions, ResumeError, sse_frames
from streamsink_memory import MemoryBackend, MemoryBroker, MemoryOptions
from tests.web.asgi import TIMEOUT, parse_frame
from tests.web.support import append, append_one, envelope

pytestmark = pytest.mark.anyio

STREAM = "session/f1"


async def _frames(iterator: AsyncIterator[bytes], count: int) -> list[bytes]:
    """The first ``count`` frames. No timeout in here: a cancel scope entered between frames
    would not nest with the generator's own (the callers bound the whole ``aclosing`` block)."""
    got: list[bytes] = []
    async for frame in iterator:
        got.append(frame)
        if len(got) == count:
            break
    return got


async def test_frames_of_a_backend_from_oldest_until_the_run_ends() -> None:
    backend = MemoryBackend(MemoryBroker())
    ids = await append(backend, STREAM, 2)
    end = await append_one(backend, STREAM, "run_stream_end", 2)
    with anyio.fail_after(TIMEOUT):
        async with aclosing(sse_frames(backend, STREAM, start="oldest")) as frames:
            got = [frame async for frame in frames]
    assert got[0] == b"retry: 2000\n\n"
    assert got[1] == b"id: %s\nevent: tool_start\ndata: %s\n\n" % (
        ids[0].encode(),
        envelope("tool_start", 0),
    )
    assert [parse_frame(f).id for f in got[1:]] == [*ids, end]
    assert not backend._handles  # its reader was closed at the end


async def test_last_event_id_wins_over_after() -> None:
    backend = MemoryBackend(MemoryBroker())
    ids = await append(backend, STREAM, 4)
    options = GatewayOptions(retry_ms=None)
    frames = sse_frames(backend, STREAM, last_event_id=ids[2], after=ids[0], options=options)
    with anyio.fail_after(TIMEOUT):
        async with aclosing(frames):
            (frame,) = await _frames(frames, 1)
    assert parse_frame(frame).id == ids[3]


async def test_a_bad_resume_id_raises_before_any_frame() -> None:
    backend = MemoryBackend(MemoryBroker())
    with pytest.raises(ResumeError, match=r"^after: ") as caught:
        await anext(sse_frames(backend, STREAM, after="x-y"))
    assert caught.value.parameter == "after"
    with pytest.raises(ResumeError, match=r"^last_event_id: .* at most 64"):
        await anext(sse_frames(backend, STREAM, last_event_id="1" * 65))
    with pytest.raises(ConfigurationError, match="stream id"):
        await anext(sse_frames(backend, "bad id"))


async def test_a_subscriber_must_be_a_fan_out_one_and_is_not_closed() -> None:
    backend = MemoryBackend(MemoryBroker())
    grouped = StreamSubscriber(backend)
    with pytest.raises(ConfigurationError, match="fan-out"):
        await anext(sse_frames(grouped, STREAM))
    ids = await append(backend, STREAM, 2)
    fan_out = StreamSubscriber(backend, SubscriberOptions(group=None))
    with anyio.fail_after(TIMEOUT):
        async with aclosing(sse_frames(fan_out, STREAM, after=ids[0])) as frames:
            got = await _frames(frames, 2)
    assert parse_frame(got[1]).id == ids[1]
    async with fan_out.subscribe(STREAM):  # still open for more
        pass
    await fan_out.aclose()


async def test_gap_and_epoch_reports() -> None:
    backend = MemoryBackend(MemoryBroker(), options=MemoryOptions(maxlen=3))
    ids = await append(backend, STREAM, 10)
    with anyio.fail_after(TIMEOUT):
        async with aclosing(sse_frames(backend, STREAM, after=ids[0])) as frames:
            _, gap, first = await _frames(frames, 3)
    assert parse_frame(gap).event == "gap"
    assert json.loads(parse_frame(gap).data or "") == {
        "count": None,
        "after": ids[0],
        "before": ids[7],
    }
    assert parse_frame(first).id == ids[7]
    with anyio.fail_after(TIMEOUT):
        async with aclosing(sse_frames(backend, "session/none", after=ids[0])) as frames:
            _, epoch = await _frames(frames, 2)
    assert parse_frame(epoch).event == "epoch"
    assert json.loads(parse_frame(epoch).data or "") == {"reason": "missing", "after": ids[0]}


async def test_heartbeats_while_idle() -> None:
    backend = MemoryBackend(MemoryBroker())
    options = GatewayOptions(heartbeat=0.02, retry_ms=None)
    with anyio.fail_after(TIMEOUT):
        async with aclosing(sse_frames(backend, STREAM, options=options)) as frames:
            got = await _frames(frames, 2)
    assert got == [b": keep-alive\n\n"] * 2
