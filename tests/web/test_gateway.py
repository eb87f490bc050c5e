"""The SSE gateway on memory://, driven at the ASGI level, on asyncio and trio: frames, resume and
its precedence, refusals before streaming, auth, CORS, heartbeat, run end, gap and epoch
reports, shutdown and disconnects."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from streamsink.web import AuthRequest, SSEGateway
from streamsink_memory import MemoryBackend, MemoryBroker, MemoryOptions
from tests.web.asgi import TIMEOUT, get, request
from tests.web.support import append, append_one, envelope, gateway

pytestmark = pytest.mark.anyio

STREAM = "session/abc"
URL = "/streams/session%2Fabc"


def _backend(maxlen: int = 0) -> MemoryBackend:
    return MemoryBackend(MemoryBroker(), options=MemoryOptions(maxlen=maxlen))


async def test_frames_are_id_event_and_the_envelope_byte_exact() -> None:
    backend = _backend()
    ids = await append(backend, STREAM, 2)
    async with gateway(backend) as app, request(app, URL + "?from=oldest") as response:
        assert response.status == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        assert "access-control-allow-origin" not in response.headers
        first = await response.next_frame()
        assert first.fields == {"retry": "2000"}
        frames = [await response.next_frame() for _ in ids]
    assert [f.id for f in frames] == ids
    assert [f.event for f in frames] == ["tool_start", "tool_start"]
    assert [f.data for f in frames] == [envelope("tool_start", i).decode() for i in range(2)]
    assert b"".join(response.chunks).startswith(
        b"retry: 2000\n\nid: "
        + ids[0].encode()
        + b"\nevent: tool_start\ndata: "
        + envelope("tool_start", 0)
        + b"\n\n"
    )


async def test_without_a_resume_it_starts_at_newest_and_no_retry_hint_when_off() -> None:
    backend = _backend()
    await append(backend, STREAM, 2)
    async with gateway(backend, retry_ms=None) as app, request(app, URL) as response:
        sent = await append_one(backend, STREAM, "assistant_reply", 7)
        frame = await response.next_frame()
    assert (frame.id, frame.event) == (sent, "assistant_reply")


@pytest.mark.parametrize(
    ("how", "winner"),
    [
        ("header", 1),  # the header wins over both parameters
        ("last_event_id", 2),  # the parameter wins over after
        ("after", 3),
    ],
)
async def test_resume_by_header_then_last_event_id_then_after(how: str, winner: int) -> None:
    backend = _backend()
    ids = await append(backend, STREAM, 6)
    headers: list[tuple[str, str]] = []
    query = []
    if how == "header":
        headers.append(("Last-Event-ID", ids[1]))
    if how in ("header", "last_event_id"):
        query.append(f"last_event_id={ids[2]}")
    query.append(f"after={ids[3]}")
    async with gateway(backend) as app:
        url = f"{URL}?{'&'.join(query)}"
        async with request(app, url, headers=headers) as response:
            await response.next_frame()  # retry
            frame = await response.next_frame()
    assert frame.id == ids[winner + 1], (how, frame)


async def test_an_empty_last_event_id_header_counts_as_absent() -> None:
    backend = _backend()
    ids = await append(backend, STREAM, 3)
    async with gateway(backend) as app:
        url = f"{URL}?after={ids[0]}"
        async with request(app, url, headers=[("last-event-id", "")]) as response:
            await response.next_frame()
            assert (await response.next_frame()).id == ids[1]


@pytest.mark.parametrize(
    ("url", "headers", "parameter"),
    [
        (URL, [("last-event-id", "not-an-id")], "Last-Event-ID header"),
        (URL + "?last_event_id=12-x", [], "last_event_id"),
        (URL + "?after=abc", [], "after"),
        (URL + "?after=" + "1" * 65, [], "after"),
        (URL + "?after=1%0A2", [], "after"),
        (URL + "?from=middle", [], "from"),
        (URL + "?run_id=", [], "run_id"),
    ],
)
async def test_bad_resume_parameters_are_400_before_streaming(
    url: str, headers: list[tuple[str, str]], parameter: str
) -> None:
    backend = _backend()
    await append(backend, STREAM, 1)
    async with gateway(backend) as app:
        response = await get(app, url, headers=headers)
    assert response.status == 400
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text.startswith(parameter + ": "), response.text
    assert response.text.count("\n") == 1
    assert "Traceback" not in response.text
    if parameter != "from" and parameter != "run_id":
        assert "entry id" in response.text


async def test_refusals_404_405_414_and_bad_stream_ids() -> None:
    async with gateway(_backend(), max_stream_id_length=20) as app:
        assert (await get(app, "/nothing/here")).status == 404
        assert (await get(app, "/streams/")).status == 404
        assert (await get(app, URL, method="POST")).status == 405
        assert (await get(app, URL, method="POST")).headers["allow"] == "GET, OPTIONS"
        assert (await get(app, "/streams/" + "x" * 21)).status == 414
        bad = await get(app, "/streams/a%20b")
        assert bad.status == 400
        assert "stream id" in bad.text
        twice = await get(app, URL + "?after=1-0&after=2-0")
        assert twice.status == 400
        assert "'after'" in twice.text
        assert (await get(app, URL + "?unknown=1&_=2", method="HEAD")).status == 405


async def test_unknown_query_parameters_are_ignored() -> None:
    backend = _backend()
    ids = await append(backend, STREAM, 1)
    url = URL + "?from=oldest&_=1699999&cachebust"
    async with gateway(backend) as app, request(app, url) as response:
        await response.next_frame()
        assert (await response.next_frame()).id == ids[0]


async def test_token_in_header_or_query_else_401_and_never_echoed() -> None:
    secret = "s3cr3t-token"
    async with gateway(_backend(), token=secret) as app:
        for headers, query in [
            ([], ""),
            ([("authorization", "Bearer wrong")], ""),
            ([], "?token=no"),
        ]:
            response = await get(app, URL + query, headers=headers)
            assert response.status == 401
            assert response.headers["www-authenticate"] == "Bearer"
            assert secret not in response.text
            assert "wrong" not in response.text
        async with request(app, URL, headers=[("Authorization", f"bearer {secret}")]) as ok:
            assert ok.status == 200
        async with request(app, URL + f"?token={secret}") as ok:
            assert ok.status == 200
    assert secret not in repr(app.options)


async def test_authorize_sees_the_request_and_false_is_403() -> None:
    seen: list[AuthRequest] = []

    async def authorize(req: AuthRequest) -> bool:
        seen.append(req)
        return req.headers.get("x-user") == "ann"

    async with gateway(_backend(), authorize=authorize, token="tok") as app:
        denied = await get(app, URL + "?token=tok&x=1", headers=[("X-User", "bob")])
        assert denied.status == 403
        assert STREAM in denied.text
        async with request(
            app, URL, headers=[("x-user", "ann"), ("authorization", "Bearer tok")]
        ) as ok:
            assert ok.status == 200
    assert [r.stream_id for r in seen] == [STREAM, STREAM]
    assert seen[0].query == {"x": "1"}
    assert "token" not in seen[0].query
    assert "authorization" not in seen[1].headers
    assert seen[0].client == ("127.0.0.1", 50000)
    assert "tok" not in repr(seen[1])
    assert "bob" not in repr(seen[0])


async def test_a_sync_authorize_returning_none_denies() -> None:
    async with gateway(_backend(), authorize=lambda req: None) as app:  # type: ignore[arg-type,return-value]
        assert (await get(app, URL)).status == 403


async def test_an_authorize_that_raises_is_a_500_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def authorize(req: AuthRequest) -> bool:
        raise RuntimeError("database down")

    async with gateway(_backend(), authorize=authorize) as app:
        response = await get(app, URL)
    assert response.status == 500
    assert response.text == "the authorization check failed\n"
    assert "database down" in caplog.text


async def test_cors_only_for_listed_origins() -> None:
    origin = "https://app.example"
    preflight = [("origin", origin), ("access-control-request-method", "GET")]
    async with gateway(_backend(), cors_origins=(origin,)) as app:
        ok = await get(app, URL, method="OPTIONS", headers=preflight)
        assert ok.status == 204
        assert ok.headers["access-control-allow-origin"] == origin
        assert ok.headers["access-control-allow-methods"] == "GET"
        assert "last-event-id" in ok.headers["access-control-allow-headers"]
        other = [("origin", "https://evil.example"), ("access-control-request-method", "GET")]
        assert (await get(app, URL, method="OPTIONS", headers=other)).status == 403
        async with request(app, URL, headers=[("origin", origin)]) as response:
            assert response.headers["access-control-allow-origin"] == origin
            assert response.headers["vary"] == "origin"
        async with request(app, URL, headers=[("origin", "https://evil.example")]) as response:
            assert "access-control-allow-origin" not in response.headers


async def test_heartbeat_comments_on_the_period() -> None:
    async with gateway(_backend(), heartbeat=0.05) as app, request(app, URL) as response:
        await response.next_frame()  # retry
        with anyio.fail_after(TIMEOUT):
            beats = [await response.next_frame() for _ in range(3)]
    assert all(b.comments == ["keep-alive"] and not b.fields for b in beats)


async def test_the_response_ends_after_run_stream_end() -> None:
    backend = _backend()
    async with gateway(backend) as app, request(app, URL) as response:
        await response.next_frame()
        await append_one(backend, STREAM, "tool_start", 1)
        end = await append_one(backend, STREAM, "run_stream_end", 2)
        await append_one(backend, STREAM, "tool_start", 3)
        frames = await response.rest()
    assert [(f.id, f.event) for f in frames][-1] == (end, "run_stream_end")
    assert [f.event for f in frames] == ["tool_start", "run_stream_end"]


async def test_with_run_id_only_that_runs_end_ends_it() -> None:
    backend = _backend()
    async with gateway(backend) as app, request(app, URL + "?run_id=run-2") as response:
        await response.next_frame()
        await append_one(backend, STREAM, "run_stream_end", 1, run_id="run-1")
        await append_one(backend, STREAM, "run_stream_end", 2, run_id="run-2")
        frames = await response.rest()
    assert [json.loads(f.data or "")["run_id"] for f in frames] == ["run-1", "run-2"]


async def test_end_on_run_end_off_keeps_streaming() -> None:
    backend = _backend()
    async with gateway(backend, end_on_run_end=False) as app, request(app, URL) as response:
        await response.next_frame()
        await append_one(backend, STREAM, "run_stream_end", 1)
        after = await append_one(backend, STREAM, "tool_start", 2)
        frames = [await response.next_frame() for _ in range(2)]
    assert frames[1].id == after


async def test_a_resume_past_trimming_gets_a_gap_report_then_the_events() -> None:
    backend = _backend(maxlen=5)
    ids = await append(backend, STREAM, 20)
    async with gateway(backend) as app, request(app, f"{URL}?after={ids[2]}") as response:
        await response.next_frame()
        gap = await response.next_frame()
        frames = [await response.next_frame() for _ in range(5)]
    assert gap.event == "gap"
    assert gap.id is None
    report = json.loads(gap.data or "")
    assert report == {"count": None, "after": ids[2], "before": ids[15]}
    assert [f.id for f in frames] == ids[15:]


async def test_a_gap_while_streaming_is_counted() -> None:
    backend = _backend(maxlen=3)
    ids = await append(backend, STREAM, 1)
    async with gateway(backend, buffer=1) as app, request(app, f"{URL}?after={ids[0]}") as response:
        await response.next_frame()
        # The reader is blocked on the stream; a burst trims past it before it reads.
        later = await append(backend, STREAM, 10, first=1)
        frames = await response.frames_until("tool_start")
    gap = json.loads(frames[-2].data or "")
    assert frames[-2].event == "gap"
    assert gap["count"] > 0
    assert frames[-1].id == later[gap["count"]]


async def test_epoch_after_destroy_and_recreate_starts_the_new_stream_at_its_oldest() -> None:
    backend = _backend()
    old = await append(backend, STREAM, 3)
    await backend.destroy(STREAM)
    # A stream re-created within the same millisecond may repeat the old ids (docs/web.md).
    await anyio.sleep(0.003)
    new = await append(backend, STREAM, 2, first=10)
    resume = [("last-event-id", old[-1])]
    async with gateway(backend) as app, request(app, URL, headers=resume) as response:
        await response.next_frame()
        epoch = await response.next_frame()
        frames = [await response.next_frame() for _ in new]
    assert epoch.event == "epoch"
    assert epoch.id is None
    assert json.loads(epoch.data or "")["reason"] in ("after_last", "before_first")
    assert json.loads(epoch.data or "")["after"] == old[-1]
    assert [f.id for f in frames] == new


async def test_epoch_when_the_broker_lost_the_stream() -> None:
    backend = _backend()
    old = await append(backend, STREAM, 3)
    backend.broker.flush()  # as Redis restarted without persistence
    async with gateway(backend) as app, request(app, f"{URL}?last_event_id={old[1]}") as response:
        await response.next_frame()
        epoch = await response.next_frame()
        sent = await append(backend, STREAM, 2, first=5)
        frames = [await response.next_frame() for _ in sent]
    assert json.loads(epoch.data or "") == {"reason": "missing", "after": old[1]}
    assert [f.id for f in frames] == sent


async def test_no_report_on_a_plain_resume() -> None:
    backend = _backend()
    ids = await append(backend, STREAM, 3)
    async with gateway(backend) as app, request(app, f"{URL}?after={ids[0]}") as response:
        await response.next_frame()
        assert [(await response.next_frame()).id for _ in range(2)] == ids[1:]


async def test_shutdown_ends_open_responses_promptly() -> None:
    backend = _backend()
    app = SSEGateway(backend)
    async with request(app, URL) as one, request(app, URL + "?from=oldest") as two:
        await one.next_frame()
        await two.next_frame()
        assert app.open_responses == 2
        with anyio.fail_after(2):
            await app.shutdown()
            await one.ended.wait()
            await two.ended.wait()
        assert app.open_responses == 0
        assert (await one.rest())[-1].comments == ["the server is shutting down"]
        assert (await get(app, URL)).status == 503
    assert backend.broker.statistics().blocked_readers == 0


async def test_lifespan_shutdown_ends_open_responses() -> None:
    app = SSEGateway(_backend())
    to_app, from_server = anyio.create_memory_object_stream[dict[str, str]](10)
    sent: list[dict[str, str]] = []

    async def send(message: dict[str, str]) -> None:
        sent.append(message)

    async with to_app, from_server, anyio.create_task_group() as tg:
        tg.start_soon(app, {"type": "lifespan"}, from_server.receive, send)
        await to_app.send({"type": "lifespan.startup"})
        async with request(app, URL) as response:
            await response.next_frame()
            await to_app.send({"type": "lifespan.shutdown"})
            with anyio.fail_after(2):
                await response.ended.wait()
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_a_disconnect_releases_the_reader_at_once() -> None:
    backend = _backend()
    async with gateway(backend, heartbeat=60) as app:
        async with request(app, URL) as response:
            await response.next_frame()
            assert app.open_responses == 1
        # The request context waited for the app to return after the disconnect.
        assert app.open_responses == 0
        assert backend.broker.statistics().blocked_readers == 0
        assert not backend._handles, backend._handles


async def test_the_stream_destroyed_while_streaming_ends_the_response() -> None:
    backend = _backend()
    await append(backend, STREAM, 1)
    async with gateway(backend) as app, request(app, URL) as response:
        await response.next_frame()
        await backend.destroy(STREAM)
        assert await response.rest() == []


async def test_viewer_routes_serve_the_page_or_404_when_off() -> None:
    async with gateway(_backend()) as app:
        app.viewer = lambda stream_id: f"<p>{stream_id}</p>"
        page = await get(app, "/view/session%2Fabc")
        assert (page.status, page.text) == (200, "<p>session/abc</p>")
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert (await get(app, "/")).text == "<p>None</p>"
        assert (await get(app, "/view/a%20b")).status == 400
        assert (await get(app, "/", method="DELETE")).status == 405
        app.viewer = None
        assert (await get(app, "/")).status == 404


@pytest.mark.parametrize("send", [False, True])
async def test_server_data_is_left_out_unless_asked_for(send: bool) -> None:
    """An event's server-only ``server_data`` does not reach clients unless the gateway is told
    to send it; the rest of the envelope is unchanged."""
    from streamsink import StreamEvent, StreamSink

    backend = _backend()
    event = StreamEvent("tool_end", "run-1", "abc", "k", {"ok": True}, server_data={"rows": 3})
    async with (
        gateway(backend, send_server_data=send) as app,
        request(app, URL + "?from=oldest") as response,
    ):
        await response.next_frame()  # retry
        sent = await StreamSink(backend).send(event)
        frame = await response.next_frame()
    envelope_sent = json.loads(frame.data)
    assert frame.id == sent.entry_id
    assert envelope_sent["payload"] == {"ok": True}
    assert envelope_sent["type"] == "tool_end"
    assert envelope_sent.get("server_data") == ({"rows": 3} if send else None)


class _CountingInfo(MemoryBackend):
    """Counts ``stream_info`` calls, each taking a moment (as a round trip does)."""

    infos = 0

    async def stream_info(self, stream_id: str, *, resume_id: str | None = None) -> Any:
        self.infos += 1
        await anyio.sleep(0.01)
        return await super().stream_info(stream_id, resume_id=resume_id)


async def test_a_mass_reconnect_asks_the_backend_once_per_stream_and_id() -> None:
    """Clients coming back at once, resuming one stream after one id (after a load balancer's
    reload), share one resume check: its cost grows with the streams, not the clients."""
    backend = _CountingInfo(MemoryBroker())
    ids = await append(backend, STREAM, 3)
    frames: list[Any] = []
    async with gateway(backend) as app, anyio.create_task_group() as tg:

        async def client() -> None:
            headers = [("Last-Event-ID", ids[0])]
            async with request(app, URL, headers=headers) as response:
                await response.next_frame()  # retry
                frames.append(await response.next_frame())

        for _ in range(20):
            tg.start_soon(client)
    assert [frame.id for frame in frames] == [ids[1]] * 20
    assert backend.infos == 1
