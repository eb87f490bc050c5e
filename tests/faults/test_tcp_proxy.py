"""The TCP fault proxy of tests/support/tcp_proxy.py does what its faults promise."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.redis_server import RedisServer
from tests.support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.redis, pytest.mark.timeout(30)]

PING = b"*1\r\n$4\r\nPING\r\n"


@pytest.fixture
def proxy(redis_process: RedisServer) -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", redis_process.port) as proxy:
        yield proxy


def _client(port: int) -> redis.Redis:
    """A client that never retries, so each fault shows as exactly one error."""
    return redis.Redis(port=port, socket_timeout=0.3, retry=Retry(NoBackoff(), 0))


def test_faults_act_on_current_connections(proxy: TcpProxy, redis_process: RedisServer) -> None:
    """A cut ends its connection after half a reply, a black hole swallows replies, a stall
    delivers what it held after the client gave up; new connections pass everything through."""
    through, direct = _client(proxy.port), _client(redis_process.port)
    try:
        assert through.ping()

        proxy.cut_next_reply()
        with pytest.raises(redis.ConnectionError):
            through.execute_command("XADD", "k", "*", "a", "1")
        assert direct.xlen("k") == 1  # the command ran; only its reply was cut
        assert through.ping()  # a new connection: not cut

        assert proxy.black_hole() == 1
        with pytest.raises(redis.TimeoutError):
            through.execute_command("XADD", "k", "*", "a", "2")
        assert direct.xlen("k") == 2
        assert through.ping()

        assert proxy.stall(0.5) >= 1
        with pytest.raises(redis.TimeoutError):
            through.execute_command("XADD", "k", "*", "a", "3")
        through.connection_pool.disconnect()  # the client gives up and closes its end
        assert direct.xlen("k") == 2
        deadline = time.monotonic() + 5
        while direct.xlen("k") < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert direct.xlen("k") == 3  # delivered late, after the client had closed

        stats = proxy.stats()
        assert (stats.cuts, stats.black_holed) == (1, 1)
        assert stats.stalled >= 1
        assert stats.bytes_black_holed > 0
        assert stats.late_bytes_delivered > 0
    finally:
        through.close()
        direct.close()


def test_a_killed_connection_discards_its_held_bytes(
    proxy: TcpProxy, redis_process: RedisServer
) -> None:
    """CLIENT KILL of a stalled connection's server side: the bytes it held never run."""
    through, direct = _client(proxy.port), _client(redis_process.port)
    try:
        victim = int(through.client_id())
        proxy.stall(0.6)
        with pytest.raises(redis.TimeoutError):
            through.execute_command("XADD", "k", "*", "a", "late")
        assert direct.execute_command("CLIENT", "KILL", "ID", victim) == 1
        deadline = time.monotonic() + 5
        while proxy.stats().late_bytes_lost == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proxy.stats().late_bytes_lost > 0
        assert direct.xlen("k") == 0
    finally:
        through.close()
        direct.close()


def test_drop_pass_through_and_stop(proxy: TcpProxy, redis_process: RedisServer) -> None:
    """drop_connections closes both sides; pass_through ends a stall at once; stop closes all."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as sock:
        sock.sendall(PING)
        assert sock.recv(64) == b"+PONG\r\n"
        assert proxy.drop_connections() == 1
        with contextlib.suppress(ConnectionResetError):  # closed by the proxy: FIN or RST
            assert sock.recv(64) == b""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as sock:
        sock.sendall(PING)
        assert sock.recv(64) == b"+PONG\r\n"
        proxy.stall(30)
        sock.sendall(PING)
        proxy.pass_through()
        assert sock.recv(64) == b"+PONG\r\n"  # at once, not after 30 s
    proxy.stop()
    proxy.stop()  # idempotent
