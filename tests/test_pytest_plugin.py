"""streamsink's pytest plugin, as an application's suite uses it: a test file run by pytest in a
fresh interpreter, the fixtures found through the plugin alone (no conftest)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

APP_TESTS = textwrap.dedent(
    """
    import anyio
    import pytest
    import streamsink
    from streamsink import StartPosition, StreamEvent

    pytestmark = pytest.mark.anyio
    URLS = []


    @pytest.fixture
    def anyio_backend():
        return "asyncio"


    async def test_fresh_broker(streamsink_streams, streamsink_url):
        URLS.append(streamsink_url)
        await streamsink_streams.sink.send(StreamEvent("usage", "run-1", "s-1"))
        assert await streamsink_streams.backend.list_streams() == ["session/s-1"]


    async def test_next_test_starts_empty(streamsink_streams, streamsink_url):
        assert URLS and URLS[0] != streamsink_url
        assert await streamsink_streams.backend.list_streams() == []


    async def test_poison_entry_is_dead_lettered(streamsink_streams, write_raw_entry):
        bad_id = await write_raw_entry(streamsink_streams, "session/s-1", b"{not json", name="usage")
        subscriber = streamsink_streams.new_subscriber(group="g")
        async with subscriber.subscribe_dead_letters("session/s-1", start=StartPosition.oldest()) as dlq:
            async with subscriber.subscribe("session/s-1", start=StartPosition.oldest()) as events:
                with anyio.move_on_after(0.3):
                    async for event in events:
                        pytest.fail(f"handed out {event!r}")
            with anyio.fail_after(5):
                letter = await anext(aiter(dlq))
        assert letter.entry_id == bad_id and letter.payload == b"{not json"


    async def test_raw_entry_rejects_other_payloads(streamsink_streams, write_raw_entry):
        with pytest.raises(streamsink.ConfigurationError, match="bytes or str, got int"):
            await write_raw_entry(streamsink_streams, "session/s-1", 42)


    def test_clock_and_recording_sink(streamsink_clock, recording_sink):
        streamsink_clock.advance(5)
        assert streamsink_clock() == 1005.0
        anyio.run(recording_sink.send, StreamEvent("tool_start", "run-1", "s-1"))
        assert [e.type for e in recording_sink.events] == ["tool_start"]
    """
)


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_app.py").write_text(APP_TESTS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMSINK_", "PYTEST_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, "test_app.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_fixtures_work_in_an_application_suite(tmp_path: Path) -> None:
    # Found through the pytest11 entry point alone, as in an application's environment.
    result = _pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout


def test_plugin_is_registered_for_pytest() -> None:
    declared = {
        ep.name: ep.value
        for ep in metadata.distribution("streamsink").entry_points
        if ep.group == "pytest11"
    }
    assert declared == {"streamsink": "streamsink.testing.pytest_plugin"}
