"""streamsink works unchanged on NATS: its command line and its SSE gateway, given a nats:// URL
or a NATS backend, do what they do on Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import streamsink
from streamsink import StreamEvent, StreamSink
from streamsink.web import SSEGateway

from streamsink_nats import NatsBackend

DEMO_TYPES = ["tool_start", "tool_end", "assistant_reply", "usage", "workflow", "run_stream_end"]


def _streamsink(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m streamsink ARGS`` importing the streamsink and streamsink_nats this test
    imports, whatever the shell exports."""
    import streamsink_nats

    paths = [Path(module.__file__ or "").parent.parent for module in (streamsink, streamsink_nats)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSINK_")}
    env["PYTHONPATH"] = os.pathsep.join(str(path) for path in paths)
    return subprocess.run(
        [sys.executable, "-m", "streamsink", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_backends_lists_nats() -> None:
    result = _streamsink("backends")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    for scheme, what in (("nats://", "NATS JetStream"), ("nats+tls://", "over TLS")):
        assert scheme in lines, result.stdout
        assert what in lines[scheme]
        assert "plugin 'nats' (streamsink-nats " in lines[scheme]


def test_demo_runs_on_nats(nats_url: str) -> None:
    """``streamsink demo --url nats://…`` plays the whole run and prints it, in order."""
    result = _streamsink("demo", "--url", nats_url, "--pace", "0")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"streamsink demo on {nats_url}"), lines[0]
    position = 0
    for word in [*DEMO_TYPES, "done: 10 events"]:
        found = result.stdout.find(word, position)
        assert found >= 0, f"{word!r} missing or out of order in:\n{result.stdout}"
        position = found + len(word)
    assert "1834 in / 41 out tokens" in result.stdout


# -- the SSE gateway ------------------------------------------------------------------------------


def _frames(body: str) -> list[dict[str, str]]:
    """The SSE frames of a whole response body, as field dicts (comments dropped)."""
    frames = []
    for raw in body.split("\n\n"):
        fields: dict[str, str] = {}
        for line in raw.split("\n"):
            if line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
        if fields:
            frames.append(fields)
    return frames


@pytest.fixture
async def backend(nats_url: str) -> AsyncIterator[NatsBackend]:
    opened = await NatsBackend.connect(nats_url, max_msgs=10)
    try:
        yield opened
    finally:
        await opened.aclose()


async def _run(sink: StreamSink, session: str, tools: int) -> list[str]:
    """A run of ``tools`` tool_start events and its run_stream_end; the entry ids."""
    events = [StreamEvent("tool_start", "run-1", session, f"k{i}", {"i": i}) for i in range(tools)]
    events.append(StreamEvent("run_stream_end", "run-1", session, "end", {}))
    return [published.entry_id for published in await sink.send_many(events)]


async def _get(
    app: SSEGateway, stream_id: str, query: str = "", **headers: str
) -> list[dict[str, str]]:
    """The frames of one stream request; the response ends by itself at run_stream_end (the
    ASGI transport returns only then)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        path = "/streams/" + stream_id.replace("/", "%2F") + query
        response = await client.get(path, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return _frames(response.text)


@pytest.mark.anyio
async def test_the_gateway_streams_resumes_and_ends_on_run_stream_end(
    backend: NatsBackend,
) -> None:
    session = uuid.uuid4().hex[:12]
    stream_id = f"session/{session}"
    ids = await _run(StreamSink(backend), session, 3)
    app = SSEGateway(backend)
    try:
        frames = await _get(app, stream_id, "?from=oldest")
        events = [frame for frame in frames if "event" in frame]
        assert [(f["id"], f["event"]) for f in events] == [
            *[(entry_id, "tool_start") for entry_id in ids[:3]],
            (ids[3], "run_stream_end"),
        ]
        assert json.loads(events[1]["data"])["payload"] == {"i": 1}
        resumed = await _get(app, stream_id, **{"last-event-id": ids[0]})
        assert [f["id"] for f in resumed if "event" in f] == ids[1:]
    finally:
        await app.shutdown()
        await backend.destroy(stream_id)


@pytest.mark.anyio
async def test_the_gateway_reports_a_gap_and_an_epoch(backend: NatsBackend) -> None:
    """A resume id trimmed away is a gap with its count (the stream kept 10 entries); after
    the stream was destroyed and made again with fewer entries, the old last id is an epoch
    and the new stream streams from its oldest entry."""
    session = uuid.uuid4().hex[:12]
    stream_id = f"session/{session}"
    sink = StreamSink(backend)
    ids = await _run(sink, session, 49)
    app = SSEGateway(backend)
    try:
        frames = await _get(app, stream_id, f"?after={ids[0]}")
        gap = next(frame for frame in frames if frame.get("event") == "gap")
        events = [frame for frame in frames if "id" in frame]
        assert [f["id"] for f in events] == ids[-10:]
        assert json.loads(gap["data"]) == {"count": 39, "after": ids[0], "before": ids[-10]}
        await backend.destroy(stream_id)
        again = await _run(sink, session, 1)
        frames = await _get(app, stream_id, f"?last_event_id={ids[-1]}")
        assert frames[1]["event"] == "epoch", frames
        assert json.loads(frames[1]["data"]) == {"reason": "after_last", "after": ids[-1]}
        assert [f["id"] for f in frames if "id" in f] == again
    finally:
        await app.shutdown()
        await backend.destroy(stream_id)
