"""Connecting: pool settings, unix sockets, credentials and unreachable servers."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from redis.asyncio.connection import SSLConnection

from streamsink import BackendUnavailableError, ConfigurationError
from streamsink.backend import BackendURL, Entry, StartPosition
from streamsink_redis import RedisBackend
from streamsink_redis._connection import build_pool
from streamsink_redis._options import parse_url
from tests.support.redis_fixtures import missing_redis
from tests.support.redis_server import RedisServer, find_redis_server

pytestmark = pytest.mark.anyio


async def test_pool_carries_the_url_settings() -> None:
    """A rediss:// URL makes a bounded TLS pool with its timeouts, retries and ssl options."""
    options, target = parse_url(
        BackendURL.parse(
            "rediss://u:pw@h:7000/2?socket_timeout=3&max_connections=4&retries=0"
            "&ssl_cert_reqs=none&client_name=svc"
        )
    )
    pool = build_pool(options, target)
    try:
        kwargs = pool.connection_kwargs
        assert pool.connection_class is SSLConnection
        assert pool.max_connections == 4
        assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("h", 7000, 2)
        assert (kwargs["username"], kwargs["password"]) == ("u", "pw")
        assert (kwargs["socket_timeout"], kwargs["client_name"]) == (3.0, "svc")
        assert kwargs["ssl_cert_reqs"] == "none"
        assert kwargs["retry"].get_retries() == 0
    finally:
        await pool.aclose()


def _server_or_skip(*extra: str) -> RedisServer:
    if not find_redis_server():
        missing_redis("no redis-server binary on PATH")
    return RedisServer(extra_args=extra)


async def test_unix_socket(tmp_path: Path, stream_id: str) -> None:
    """unix:///path/to/sock?db=N reaches a server listening on that socket."""
    path = tmp_path / "redis.sock"
    with _server_or_skip("--unixsocket", str(path), "--unixsocketperm", "700"):
        async with await RedisBackend.open(f"unix://{path}?db=1") as backend:
            assert backend.description == f"unix://{path}?db=1"
            reader = await backend.open_reader(stream_id, StartPosition.oldest())
            ids = await backend.append([Entry(stream_id, "x", b"{}")])
            assert [r.entry_id for r in await reader.read(10, 0.5)] == ids


async def test_credentials(stream_id: str) -> None:
    """A password-protected server: the right password works, a wrong one is a configuration
    error that does not show the password."""
    with _server_or_skip("--requirepass", "s3cret") as server:
        url = f"redis://:s3cret@127.0.0.1:{server.port}/0"
        async with await RedisBackend.open(url) as backend:
            assert "s3cret" not in backend.description
            await backend.append([Entry(stream_id, "x", b"{}")])
        with pytest.raises(ConfigurationError) as info:
            await RedisBackend.open(f"redis://:wrong-password@127.0.0.1:{server.port}/0")
        assert "wrong-password" not in str(info.value)


async def test_unreachable_server_is_unavailable() -> None:
    """Opening a URL where nothing listens raises BackendUnavailableError."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(BackendUnavailableError):
        await RedisBackend.open(f"redis://127.0.0.1:{port}/0?socket_connect_timeout=1")
    with pytest.raises(BackendUnavailableError):
        await RedisBackend.open(f"unix:///nonexistent/{port}.sock")
