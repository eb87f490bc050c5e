"""``streamsink serve``: its refusals, the missing-extra message, no secret in its output, and
``--demo`` serving a run live, over a real server process on a free port."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from streamsink._cli import main
from streamsink._cli._serve import is_loopback
from tests.support.redis_fixtures import missing_redis
from tests.support.redis_server import RedisServer, find_redis_server
from tests.web.browser.serve import ServeProcess

DEMO_TYPES = ["tool_start", "tool_end", "assistant_reply", "usage", "workflow", "run_stream_end"]
TOKEN = "tok-SENTINEL-serve-q9"
PASSWORD = "pw-SENTINEL-serve-x7"


@pytest.fixture(autouse=True)
def _no_streamsink_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMSINK_URL", raising=False)
    monkeypatch.delenv("STREAMSINK_TOKEN", raising=False)


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def _wait_for_output(server: ServeProcess, text: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = server.output()
        if text in output:
            return output
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not printed; output so far:\n{server.output()}")


# -- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_refuses_a_non_loopback_address_without_a_token(
    host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """No token on an address others can reach: one line, status 2, nothing bound."""
    assert main(["serve", "--url", "redis://127.0.0.1:1/0", "--host", host]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"streamsink: error: refusing to serve on {host} without a token")
    assert "STREAMSINK_TOKEN" in line


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost", "[::1]"])
def test_loopback_addresses_are_recognised(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.1.2.3", "example.invalid"])
def test_other_addresses_are_not_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_memory_without_demo_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """A memory:// gateway could only show what its own process publishes."""
    assert main(["serve", "--url", "memory://"]) == 2
    assert "--demo" in _error_line(capsys)


def test_bad_token_is_refused_without_showing_it(capsys: pytest.CaptureFixture[str]) -> None:
    secret = "has space-SENTINEL"
    assert main(["serve", "--url", "redis://127.0.0.1:1/0", "--token", secret]) == 2
    line = _error_line(capsys)
    assert "GatewayOptions.token is invalid" in line
    assert "SENTINEL" not in line


def test_a_taken_port_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--demo", "--port", str(port)]) == 2
    assert _error_line(capsys).startswith(f"streamsink: error: cannot listen on 127.0.0.1:{port}:")


def test_bad_port_and_heartbeat_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--port", "70000"], ["--port", "http"], ["--heartbeat", "0"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["serve", "--demo", *argv])
        assert exit_info.value.code == 2
        assert argv[1] in capsys.readouterr().err


def test_missing_web_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # `import uvicorn` raises ImportError
    assert main(["serve", "--demo"]) == 2
    assert _error_line(capsys) == (
        "streamsink: error: streamsink serve needs the web extra: pip install 'streamsink[web]'"
    )


# -- a real server --------------------------------------------------------------------------------


@pytest.fixture
def locked_redis() -> Iterator[RedisServer]:
    """A private redis-server that wants a password."""
    if not find_redis_server():
        missing_redis("no redis-server binary on PATH")
    with RedisServer(extra_args=("--requirepass", PASSWORD)) as server:
        yield server


@pytest.mark.redis
def test_no_secret_is_printed(locked_redis: RedisServer, tmp_path: Path) -> None:
    """Neither the URL's password nor the token shows in what serve prints, while it serves
    requests carrying the token (an access log would show ``?token=``) and refuses others."""
    url = locked_redis.url.replace("redis://", f"redis://default:{PASSWORD}@")
    server = ServeProcess(["--url", url], env={"STREAMSINK_TOKEN": TOKEN}, log_dir=tmp_path)
    with server:
        _wait_for_output(server, "a token is required")
        stream = quote("session/secrets", safe="")
        with httpx.Client(base_url=server.origin, timeout=5) as client:
            assert client.get(f"/streams/{stream}").status_code == 401
            assert client.get(f"/streams/{stream}?token=wrong-{TOKEN}").status_code == 401
            with client.stream("GET", f"/streams/{stream}?token={TOKEN}") as response:
                assert response.status_code == 200
                assert next(response.iter_lines()).startswith("retry:")
            headers = {"Authorization": f"Bearer {TOKEN}"}
            with client.stream("GET", f"/streams/{stream}", headers=headers) as response:
                assert response.status_code == 200
            assert client.get(f"/view/{stream}?token={TOKEN}").status_code == 200
    output = server.output()
    assert "streamsink serve on redis://127.0.0.1:" in output
    assert PASSWORD not in output
    assert TOKEN not in output


def test_demo_serves_a_run_and_the_viewer(tmp_path: Path) -> None:
    """``serve --demo`` prints the page to open; the stream delivers a whole demo run, and the
    page is served."""
    server = ServeProcess(["--demo", "--pace", "0.5"], log_dir=tmp_path)
    with server:
        output = _wait_for_output(server, "in a browser")
        page = f"{server.origin}/view/session%2Fdemo?from=newest&follow=1"
        assert f"open {page} in a browser" in output
        with httpx.Client(timeout=15) as client:
            html = client.get(page)
            assert html.status_code == 200
            assert html.headers["content-type"].startswith("text/html")
            assert "streamsink-config" in html.text
            # from=newest: the rest of the current run (the response ends after its
            # run_stream_end), then, after its last id, the next run, whole.
            runs: list[list[str]] = []
            last_id: str | None = None
            while len(runs) < 2:
                types: list[str] = []
                query = f"?after={last_id}" if last_id else ""
                url = f"{server.origin}/streams/session%2Fdemo{query}"
                with client.stream("GET", url) as response:
                    assert response.headers["content-type"].startswith("text/event-stream")
                    for line in response.iter_lines():
                        if line.startswith("event: "):
                            types.append(line.removeprefix("event: "))
                        elif line.startswith("id: "):
                            last_id = line.removeprefix("id: ")
                runs.append(types)
    assert runs[0][-1] == "run_stream_end"
    assert list(dict.fromkeys(runs[1])) == DEMO_TYPES
    assert len(runs[1]) == 10


def test_sigterm_ends_open_streams_promptly(tmp_path: Path) -> None:
    """A stream that would never end by itself (a run id that never comes) is ended by the
    gateway's shutdown, with its comment, and the server exits soon after SIGTERM."""
    server = ServeProcess(["--demo", "--pace", "0.5"], log_dir=tmp_path)
    with server, httpx.Client(timeout=10) as client:
        url = f"{server.origin}/streams/session%2Fdemo?run_id=never"
        with client.stream("GET", url) as response:
            lines = response.iter_lines()
            assert next(lines).startswith("retry:")
            assert server.process is not None
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            rest = list(lines)
            server.process.wait(10)
            elapsed = time.monotonic() - started
    assert ": the server is shutting down" in rest
    assert elapsed < 2.5, elapsed
