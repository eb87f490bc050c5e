"""No output path shows a secret: passwords, and tokens in the user part of a URL.

Every URL below carries a sentinel password and a sentinel token (user part). Each is pushed
through every way streamsink can fail on a URL (``BackendURL.parse``, ``open_backend``,
``connect``, each backend's option and location checks, unreachable servers) and through every
CLI command, with the URL given by ``--url`` and by ``$STREAMSINK_URL``; stdout, stderr, logs,
exception texts (with their causes) and reprs are searched for the sentinels.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import streamsink
from streamsink import ConfigurationError, StreamsinkError
from streamsink._cli import main
from streamsink.backend import BackendURL
from tests.support.redis_fixtures import missing_redis
from tests.support.redis_server import RedisServer, find_redis_server

TOKEN = "tok-SENTINEL-q9"
PASSWORD = "pw-SENTINEL-x7"
CREDENTIALS = f"{TOKEN}:{PASSWORD}"
SCRIPT = Path(sys.executable).parent / "streamsink"
QUICK = "socket_connect_timeout=0.3&socket_timeout=0.3"

# URLs that BackendURL.parse refuses: no scheme, a bad scheme or port, a malformed host, and
# passwords or tokens holding an unencoded '#', '?' or '/' (which urlsplit takes for the end of
# the host part, so the secret lands in the port, path, query or fragment).
MALFORMED = [
    f"{CREDENTIALS}@localhost:6379",
    f"re dis://{CREDENTIALS}@h",
    f"redis://{CREDENTIALS}@h:99999/0",
    f"redis://{CREDENTIALS}@h:port/0",
    f"redis://{CREDENTIALS}@[::1/0",
    f"redis://{TOKEN}:pa\uff03{PASSWORD}@h/0",
    f"redis://{TOKEN}:pa#{PASSWORD}@h:6379/0",
    f"redis://{TOKEN}:pa?{PASSWORD}@h/0",
    f"redis://{TOKEN}:pa/{PASSWORD}@h/0",
    f"redis://{TOKEN}:12/{PASSWORD}@h/0",
    f"redis://{TOKEN}:12?{PASSWORD}@h/0",
    f"redis://{TOKEN}:12?a={PASSWORD}@h/0",
    f"redis://to/{TOKEN}@h/0",
    f"redis://to?{TOKEN}@h/0",
    f"amqp://to#{TOKEN}@h",
    f"redis+cluster://{CREDENTIALS}@h1:1,h2:port",
    f"redis+cluster://{CREDENTIALS}@h1:1,,h2:2",
]

# URLs that parse but that a backend refuses (options, locations, credentials where there are
# none), or whose scheme nobody serves, or whose server is not there.
REFUSED = [
    f"redis://{CREDENTIALS}@h/0?bogus=1",
    f"redis://{CREDENTIALS}@h/0?maxlen=lots",
    f"redis://{CREDENTIALS}@h/zero",
    f"redis://{CREDENTIALS}@h/1?db=2",
    f"redis://{CREDENTIALS}@h/0?maxlen=1&maxlen=2",
    f"redis://{CREDENTIALS}@h/0?client_name=two%20words",
    f"redis://{CREDENTIALS}@h/0?ssl_ca_certs=/ca.pem",
    f"rediss://{CREDENTIALS}@h/0?ssl_cert_reqs=maybe",
    f"unix://{CREDENTIALS}@host/redis.sock",
    f"unix://{CREDENTIALS}@",
    f"fakeredis://{CREDENTIALS}@bus",
    f"fakeredis://{TOKEN}@bus",
    f"memory://{CREDENTIALS}@broker",
    f"memory://{TOKEN}@broker",
    f"memory://{CREDENTIALS}@broker:1/p?maxlen=lots",
    f"amqp://{TOKEN}@h:5672",
    f"memroy://{CREDENTIALS}@x",
    f"redis://{CREDENTIALS}@127.0.0.1:1/0?{QUICK}",
    f"redis://{TOKEN}@127.0.0.1:1/0?{QUICK}",
    f"rediss://{CREDENTIALS}@127.0.0.1:1/0?{QUICK}",
    f"unix://{CREDENTIALS}@/nonexistent/streamsink-test/redis.sock?{QUICK}",
    f"redis+cluster://{CREDENTIALS}@h1:1,h2:2/0",
    f"redis+cluster://{CREDENTIALS}@h1:1,h2:2?db=1",
    f"redis+cluster://{CREDENTIALS}@h1:1?pulse_keepalive=true",
    f"redis+cluster://{CREDENTIALS}@127.0.0.1:1,127.0.0.1:2?{QUICK}",
    f"rediss+cluster://{CREDENTIALS}@127.0.0.1:1?{QUICK}",
]


def assert_no_secret(*texts: object) -> None:
    """None of ``texts`` shows either sentinel (case-insensitively: some parts get lower-cased)."""
    for text in texts:
        assert "sentinel" not in str(text).lower(), f"a secret leaked into:\n{text}"


def error_texts(exc: BaseException) -> list[str]:
    """What a traceback or log line would show of ``exc``: it and its causes, str and repr."""
    texts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current)]
        if isinstance(current, BaseExceptionGroup):
            for leaf in current.exceptions:
                texts += error_texts(leaf)
        current = current.__cause__ or current.__context__
    return texts


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every log record of every logger, checked for secrets after each test."""
    caplog.set_level(logging.DEBUG)
    yield
    assert_no_secret(caplog.text, *(r.getMessage() for r in caplog.records))


@pytest.fixture(autouse=True)
def _no_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMSINK_URL", raising=False)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSINK_")}
    env.update(extra)
    return env


# -- the library ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", MALFORMED)
def test_parse_errors_show_no_secret(url: str) -> None:
    """A URL that does not parse is refused without echoing its user part."""
    with pytest.raises(ConfigurationError) as info:
        BackendURL.parse(url)
    assert_no_secret(*error_texts(info.value))


@pytest.mark.parametrize(
    ("special", "encoded"),
    [("#", "%23"), ("?", "%3F"), ("/", "%2F")],
    ids=["hash", "query", "slash"],
)
def test_unencoded_password_characters_say_to_percent_encode(special: str, encoded: str) -> None:
    """A password holding '#', '?' or '/' is refused with a hint to percent-encode it, and the
    encoded form is accepted with the password intact."""
    with pytest.raises(ConfigurationError, match=r"(?i)percent-encode") as info:
        BackendURL.parse(f"redis://{TOKEN}:pa{special}{PASSWORD}@h/0")
    assert encoded in str(info.value)
    parsed = BackendURL.parse(f"redis://{TOKEN}:pa{encoded}{PASSWORD}@h/0")
    assert (parsed.host, parsed.password) == ("h", f"pa{special}{PASSWORD}")


@pytest.mark.anyio
@pytest.mark.parametrize("url", MALFORMED + REFUSED)
async def test_open_and_connect_errors_show_no_secret(url: str) -> None:
    """open_backend and connect refuse every such URL with a streamsink error free of secrets."""
    with pytest.raises(StreamsinkError) as info:
        await streamsink.open_backend(url)
    assert_no_secret(*error_texts(info.value))
    with pytest.raises(StreamsinkError) as info:
        async with streamsink.connect(url):
            pass
    assert_no_secret(*error_texts(info.value))


@pytest.mark.parametrize("url", REFUSED)
def test_parsed_urls_show_no_secret(url: str) -> None:
    """str(), repr() and options errors of a parsed URL hide the whole user part."""
    parsed = BackendURL.parse(url)
    assert_no_secret(str(parsed), repr(parsed), f"{parsed}", f"{parsed!r}")
    assert "***@" in str(parsed)
    try:
        parsed.options()
    except ConfigurationError as exc:
        assert_no_secret(*error_texts(exc))


def test_redis_options_and_targets_show_no_secret() -> None:
    """The Redis backend's parsed options and connection target hide the credentials."""
    pytest.importorskip("redis")
    from streamsink_redis._options import parse_url

    for url in (f"redis://{CREDENTIALS}@h:1/2", f"unix://{CREDENTIALS}@/s.sock?db=1"):
        options, target = parse_url(BackendURL.parse(url))
        assert_no_secret(repr(options), str(options), repr(target), target.describe(options.db))
        assert (target.username, target.password) == (TOKEN, PASSWORD)  # still usable


@pytest.fixture
def acl_server() -> Iterator[RedisServer]:
    """A private redis-server whose only non-default user is the sentinel token with the
    sentinel password."""
    if not find_redis_server():
        missing_redis("no redis-server binary on PATH")
    acl = ("--user", TOKEN, "on", f">{PASSWORD}", "~*", "&*", "+@all")
    with RedisServer(extra_args=acl) as server:
        yield server


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_open_redis_backend_shows_no_secret(acl_server: RedisServer) -> None:
    """A Redis backend opened with credentials describes and reprs itself without them, and a
    wrong password is refused without showing either."""
    pytest.importorskip("redis")
    url = f"redis://{CREDENTIALS}@127.0.0.1:{acl_server.port}/0"
    async with streamsink.connect(url) as streams:
        backend = streams.backend
        subscriber = streams.new_subscriber(group=None)
        assert_no_secret(
            backend.description, repr(backend), str(backend), repr(streams), repr(subscriber)
        )
        async with subscriber.subscribe("session/secrets") as subscription:
            assert_no_secret(repr(subscription))
    wrong = f"redis://{TOKEN}:wrong-SENTINEL@127.0.0.1:{acl_server.port}/0"
    with pytest.raises(ConfigurationError) as info:
        await streamsink.open_backend(wrong)
    assert_no_secret(*error_texts(info.value))


# -- the command line -----------------------------------------------------------------------------


def _run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        status = main(args)
    except SystemExit as exit_:  # --help and usage errors
        status = exit_.code if isinstance(exit_.code, int) else 2
    captured = capsys.readouterr()
    return status, captured.out, captured.err


COMMANDS = [["demo", "--timeout", "3"], ["tail", "session/secrets", "--from", "oldest"]]


@pytest.mark.parametrize("url", MALFORMED + REFUSED)
@pytest.mark.parametrize("command", COMMANDS, ids=["demo", "tail"])
def test_cli_errors_show_no_secret(
    url: str,
    command: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """demo and tail fail on each URL with one error line and no secret, whether the URL comes
    from --url or from $STREAMSINK_URL."""
    status, out, err = _run_cli([*command, "--url", url], capsys)
    assert status == 2, err
    assert err.startswith("streamsink: error: ")
    assert_no_secret(out, err)
    monkeypatch.setenv("STREAMSINK_URL", url)
    status, out, err = _run_cli(command, capsys)
    assert status == 2, err
    assert_no_secret(out, err)


@pytest.mark.parametrize("command", ["demo", "tail", None])
def test_cli_help_shows_no_secret(
    command: str | None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--help names the URL $STREAMSINK_URL holds, with its user part redacted."""
    monkeypatch.setenv("STREAMSINK_URL", f"redis://{CREDENTIALS}@cache.example:6380/0")
    status, out, err = _run_cli([command, "--help"] if command else ["--help"], capsys)
    assert status == 0
    assert_no_secret(out, err)
    if command:
        assert "redis://***@cache.example:6380/0" in out


def test_cli_backends_and_version_show_no_secret(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """backends and --version print nothing of $STREAMSINK_URL."""
    monkeypatch.setenv("STREAMSINK_URL", f"redis://{CREDENTIALS}@h/0")
    for args in (["backends"], ["--version"], []):
        _, out, err = _run_cli(args, capsys)
        assert_no_secret(out, err)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections (into the listen backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_cli_demo_timeout_shows_no_secret(
    silent_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """A demo that times out while opening the backend names the URL without its user part."""
    pytest.importorskip("redis")
    url = f"redis://{CREDENTIALS}@127.0.0.1:{silent_port}/0?socket_timeout=5"
    status, out, err = _run_cli(["demo", "--url", url, "--timeout", "0.5"], capsys)
    assert status == 1, err
    assert "timed out" in err
    assert f"redis://***@127.0.0.1:{silent_port}/0" in err
    assert_no_secret(out, err)


def test_console_script_shows_no_secret(silent_port: int) -> None:
    """The installed script, with the URL in its environment: help, a bad URL, an unreachable
    server and a timeout all print no secret."""
    runs = [
        (["demo", "--help"], f"redis://{CREDENTIALS}@h/0", 0),
        (["tail", "--help"], f"redis://{CREDENTIALS}@h/0", 0),
        (["demo"], f"redis://{TOKEN}:pa#{PASSWORD}@h/0", 2),
        (["tail", "session/x"], f"memory://{CREDENTIALS}@x", 2),
        (["demo", "--timeout", "0.5"], f"redis://{CREDENTIALS}@127.0.0.1:{silent_port}/0", 1),
    ]
    for args, url, expected in runs:
        result = subprocess.run(
            [str(SCRIPT), *args],
            env=_clean_env(STREAMSINK_URL=url),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == expected, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert_no_secret(result.stdout, result.stderr)
