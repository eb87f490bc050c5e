"""The viewer page in a real browser: Debian's chromium, driven by Playwright, against a real
``streamsink serve`` process on a real redis-server.

Every event must reach the page exactly once and in order, across a SIGKILL and restart of the
gateway in the middle of the run (the browser's own reconnect, with ``Last-Event-ID``) and a
re-created EventSource (the page's reconnect, with ``?last_event_id=``). Without chromium or
Playwright the test is skipped, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import pytest

import streamsink
from streamsink import StreamEvent
from streamsink.payloads import AssistantReply, RunStreamEnd, ToolEnd, ToolStart, Workflow
from tests.web.browser.serve import ServeProcess

pytestmark = [pytest.mark.redis, pytest.mark.slow]

CHROMIUM = os.environ.get("STREAMSINK_CHROMIUM", "/usr/bin/chromium")
BUILD = Path(__file__).resolve().parents[2] / "build" / "browser"
EVENTS = 150
HOSTILE = '<img src=x onerror="window.pwned=1"></script><script>window.pwned=2</script>'


_SUMMARY = """() => {
    const s = streamsinkViewer.state;
    return {status: s.status, received: s.received.length, opens: s.opens,
            duplicates: s.duplicates, notices: s.notices, last: s.lastId};
}"""


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{reason} (CI=true: the real-browser test must run)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (it is in the dev extra)")
    if not Path(CHROMIUM).exists():
        _missing(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            yield chromium
        finally:
            chromium.close()


def _off_the_loop(function: Any, *args: Any) -> None:
    """``anyio.run(function, *args)`` in another thread: Playwright's sync API keeps an event
    loop running in this one."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(anyio.run, function, *args).result(timeout=20)


def run_events(run_id: str, session_id: str) -> list[StreamEvent]:
    """``EVENTS`` events of one run: tool calls with replies between them, the run's end last."""
    events: list[StreamEvent] = []
    call = 0
    while len(events) < EVENTS - 2:
        call += 1
        call_id = f"call-{call}"
        events.append(
            ToolStart(tool_call_id=call_id, tool_name=f"tools.step{call}").to_event(
                run_id, session_id
            )
        )
        text = HOSTILE if call == 3 else f"chunk {call}. "
        events.append(AssistantReply(text=text).to_event(run_id, session_id))
        events.append(
            ToolEnd(
                tool_call_id=call_id,
                tool_name=f"tools.step{call}",
                result_preview=f"result {call}",
                duration=(call % 7 + 1) * 3_000_000,
            ).to_event(run_id, session_id)
        )
    del events[EVENTS - 2 :]
    events.append(Workflow(phase="completed", status="success").to_event(run_id, session_id))
    events.append(RunStreamEnd().to_event(run_id, session_id))
    return events


class Producer(threading.Thread):
    """Publishes ``events`` one every ``interval`` seconds, keeping their entry ids. Before the
    event of each index in ``holds`` it waits until the test sets that gate."""

    def __init__(
        self, url: str, events: list[StreamEvent], interval: float, holds: list[int]
    ) -> None:
        super().__init__(daemon=True)
        self.url, self.events, self.interval = url, events, interval
        self.gates = {index: threading.Event() for index in holds}
        self.ids: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            anyio.run(self._produce)
        except BaseException as exc:  # reported by the test
            self.error = exc

    async def _produce(self) -> None:
        async with streamsink.connect(self.url) as streams:
            for index, event in enumerate(self.events):
                gate = self.gates.get(index)
                if gate is not None:
                    await anyio.to_thread.run_sync(gate.wait, 20)
                self.ids.append((await streams.sink.send(event)).entry_id)
                await anyio.sleep(self.interval)

    def release(self, index: int) -> None:
        self.gates[index].set()


def test_every_event_once_in_order_across_gateway_restart_and_reopen(
    browser: Any, redis_url: str
) -> None:
    BUILD.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(16)
    session = f"browser-{secrets.token_hex(4)}"
    stream = f"session/{session}"
    events = run_events("run-browser", session)
    gateway = ServeProcess(
        ["--url", redis_url], env={"STREAMSINK_TOKEN": token}, log_dir=BUILD
    ).start()
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{gateway.origin}/view/{quote(stream, safe='')}?token={token}")
        page.wait_for_function(
            "() => streamsinkViewer.state.status === 'connected'", timeout=10_000
        )

        producer = Producer(redis_url, events, interval=0.01, holds=[40, 80, 110])
        producer.start()
        received = "streamsinkViewer.state.received.length"
        page.wait_for_function(f"() => {received} >= 40", timeout=10_000)
        gateway.kill()  # mid-run; the run goes on meanwhile
        producer.release(40)
        page.wait_for_function("() => streamsinkViewer.state.status === 'reconnecting'")
        gateway.start()  # same port: the browser reconnects by itself, with Last-Event-ID
        producer.release(80)
        page.wait_for_function(f"() => {received} >= 100", timeout=15_000)
        # The page's own reconnect (?last_event_id=), while events are still being delivered.
        page.evaluate("streamsinkViewer.reopen()")
        producer.release(110)
        page.wait_for_function("() => streamsinkViewer.state.status === 'ended'", timeout=15_000)
        producer.join(10)
        assert producer.error is None, producer.error

        state = page.evaluate("streamsinkViewer.state")
        assert state["duplicates"] == 0
        assert state["received"] == producer.ids  # every event, once, in order
        assert state["types"] == [event.type for event in events]
        assert state["opens"] >= 2  # the page re-created its EventSource at least once
        assert state["notices"] == []
        assert page.text_content("#count") == f"{EVENTS} events"
        reply = "".join(
            str(event.payload["text"]) for event in events if event.type == "assistant_reply"
        )
        assert page.text_content(".run .reply") == reply  # hostile text shown as text
        assert page.evaluate("document.querySelectorAll('img').length") == 0
        assert page.evaluate("window.pwned === undefined")
        assert page.locator(".run tbody tr").count() >= (EVENTS - 2) // 3
        assert errors == []
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(BUILD / "viewer.png"), full_page=True)
    except Exception:
        print(gateway.output())
        with contextlib.suppress(Exception):
            print("page:", page.evaluate(_SUMMARY))
        raise
    finally:
        page.close()
        gateway.stop()


def test_the_picker_opens_a_stream_whose_id_is_shown_as_text(browser: Any, tmp_path: Path) -> None:
    """``/`` asks for a stream id and opens its page; an id made of markup stays text."""
    stream = 'session/<img/src=x/onerror="window.pwned=1">'
    with ServeProcess(["--demo", "--pace", "0.2"], log_dir=tmp_path) as gateway:
        page = browser.new_page()
        try:
            page.goto(f"{gateway.origin}/")
            page.fill("#pick-stream", stream)
            page.press("#pick-stream", "Enter")
            page.wait_for_url(f"{gateway.origin}/view/{quote(stream, safe='')}")
            page.wait_for_function("() => streamsinkViewer.state.status === 'connected'")
            assert page.text_content("#stream-name") == stream
            assert page.title() == f"{stream} · streamsink"
            assert page.evaluate("document.querySelectorAll('img').length") == 0
            assert page.evaluate("window.pwned === undefined")
        finally:
            page.close()


def test_a_destroyed_stream_shows_an_epoch_notice(
    browser: Any, redis_url: str, tmp_path: Path
) -> None:
    """The stream is destroyed and written again while the page is away: it reconnects, shows
    the gateway's epoch report as a notice, and the new stream's events."""
    session = f"epoch-{secrets.token_hex(4)}"
    stream = f"session/{session}"

    async def publish(texts: list[str], *, destroy: bool = False) -> None:
        async with streamsink.connect(redis_url) as streams:
            if destroy:
                await streams.backend.destroy(stream)
            for text in texts:
                await streams.sink.send(AssistantReply(text=text).to_event("run-e", session))

    with ServeProcess(["--url", redis_url], log_dir=tmp_path) as gateway:
        page = browser.new_page()
        try:
            page.goto(f"{gateway.origin}/view/{quote(stream, safe='')}")
            page.wait_for_function("() => streamsinkViewer.state.status === 'connected'")
            _off_the_loop(publish, ["one ", "two "])
            page.wait_for_function("() => streamsinkViewer.state.received.length === 2")
            # While the gateway is down (an open reader in another process would just read
            # on): the stream is re-created, and the page's Last-Event-ID is from the old one.
            gateway.kill()
            _off_the_loop(lambda: publish(["three"], destroy=True))
            gateway.start()
            page.wait_for_function(
                "() => streamsinkViewer.state.received.length === 3", timeout=15_000
            )
            notices = page.evaluate("streamsinkViewer.state.notices")
            assert [n["kind"] for n in notices] == ["epoch"]
            assert page.text_content(".notice").startswith("New epoch:")
            assert page.text_content(".run .reply") == "one two three"
        finally:
            page.close()
