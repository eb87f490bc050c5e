"""The redis-py connection internals the backend's dedicated connections rely on, pinned by
behaviour against a real server (``streamsink_redis._connection``: pipelined commands on one
connection, reads without a socket timeout, error replies that leave the connection in sync).

``redis>=5.2`` has no upper bound; a redis-py release that changes one of these fails here, by
name, instead of as a hang or a lost reply deep in a subscription."""

from __future__ import annotations

import inspect
import math
import time

import pytest
import redis.exceptions as rex
from redis.asyncio.connection import Connection, ConnectionPool

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_the_methods_and_parameters_exist() -> None:
    """The connection methods the backend calls, with the parameters it passes."""
    for name in ("send_command", "send_packed_command", "pack_commands", "read_response"):
        assert callable(getattr(Connection, name, None)), name
    assert "timeout" in inspect.signature(Connection.read_response).parameters
    assert "nowait" in inspect.signature(Connection.disconnect).parameters


async def _connection(redis_url: str, socket_timeout: float) -> tuple[ConnectionPool, Connection]:
    pool = ConnectionPool.from_url(redis_url, socket_timeout=socket_timeout)
    conn = await pool.get_connection()
    return pool, conn


async def test_pipelined_commands_on_one_connection(redis_url: str) -> None:
    """pack_commands + send_packed_command write several commands at once; read_response reads
    their replies in order (the backend's CLIENT ID in front of a command, CHECK + XREADGROUP)."""
    pool, conn = await _connection(redis_url, 5.0)
    try:
        await conn.send_packed_command(conn.pack_commands([["PING"], ["ECHO", "x"], ["TIME"]]))
        assert await conn.read_response(timeout=math.inf) == b"PONG"
        assert await conn.read_response(timeout=math.inf) == b"x"
        seconds, micros = await conn.read_response(timeout=math.inf)
        assert int(seconds) > 0
        assert int(micros) >= 0
    finally:
        await pool.disconnect()


async def test_an_infinite_read_timeout_outlasts_the_socket_timeout(redis_url: str) -> None:
    """read_response(timeout=math.inf) waits past socket_timeout: a blocking read longer than it
    returns its reply instead of raising TimeoutError (the backend bounds reads itself)."""
    pool, conn = await _connection(redis_url, 0.05)
    try:
        started = time.monotonic()
        await conn.send_command("BLPOP", "streamsink:test:never", "0.3")
        assert await conn.read_response(timeout=math.inf) is None
        assert time.monotonic() - started >= 0.25
    finally:
        await pool.disconnect()


async def test_the_socket_timeout_applies_without_one(redis_url: str) -> None:
    """read_response(timeout=None) keeps the socket timeout: what the backend relies on where it
    wants one (fakeredis polling passes None)."""
    pool, conn = await _connection(redis_url, 0.05)
    try:
        await conn.send_command("BLPOP", "streamsink:test:never", "1")
        with pytest.raises(rex.TimeoutError):
            await conn.read_response(timeout=None)
    finally:
        await conn.disconnect(nowait=True)
        await pool.disconnect()


async def test_an_error_reply_leaves_the_connection_in_sync(redis_url: str) -> None:
    """An error reply is raised as ResponseError and the reply after it is the next command's."""
    pool, conn = await _connection(redis_url, 5.0)
    try:
        await conn.send_packed_command(conn.pack_commands([["NOSUCHCOMMAND"], ["ECHO", "after"]]))
        with pytest.raises(rex.ResponseError):
            await conn.read_response(timeout=math.inf)
        assert await conn.read_response(timeout=math.inf) == b"after"
        await conn.send_command("ECHO", "again")
        assert await conn.read_response(timeout=math.inf) == b"again"
    finally:
        await pool.disconnect()


async def test_disconnect_nowait_then_reconnect(redis_url: str) -> None:
    """disconnect(nowait=True) drops a connection with a reply in flight; the connection object
    connects again on its next command, with nothing stale to read."""
    pool, conn = await _connection(redis_url, 5.0)
    try:
        await conn.send_command("BLPOP", "streamsink:test:never", "5")
        await conn.disconnect(nowait=True)
        await conn.send_command("ECHO", "fresh")
        assert await conn.read_response(timeout=math.inf) == b"fresh"
    finally:
        await pool.disconnect()
