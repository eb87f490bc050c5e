"""Connections: the shared pool for short commands, and one dedicated, cancel-safe connection per
consumer or reader for its blocking reads (the hot commands have theirs: :mod:`._commands`)."""

from __future__ import annotations

import asyncio
import functools
import math
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import anyio
import redis.asyncio as aioredis
import redis.exceptions as rex
from redis.asyncio.connection import (
    AbstractConnection,
    BlockingConnectionPool,
    Connection,
    ConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from streamsink import ConfigurationError

from ._options import ConnectionTarget, RedisOptions

__all__ = [
    "DedicatedConnection",
    "Interrupted",
    "ReadCommand",
    "build_pool",
    "execute",
    "fake_pool",
    "fake_server",
    "describe_pool",
    "is_fake_pool",
    "raw_client",
]

T = TypeVar("T")

ReadCommand = Callable[[int], Sequence[Any]]
"""Builds a read command for a server-side wait in ms (0 = do not block)."""

_POLL_MIN = 0.002
_POLL_MAX = 0.02


class Interrupted(Exception):
    """A read was interrupted by :meth:`DedicatedConnection.interrupt` (destroy or close)."""


def raw_client(pool: ConnectionPool) -> aioredis.Redis:
    """A client on ``pool`` that returns raw replies (no redis-py response callbacks), so the
    parsing in :mod:`._wire` sees the same shapes whatever client options the pool has."""
    client = aioredis.Redis(connection_pool=pool)
    client.response_callbacks.clear()
    return client


async def execute(client: aioredis.Redis, *args: Any) -> Any:
    """Run one command on the shared pool; the raw reply."""
    return await client.execute_command(*args)  # type: ignore[no-untyped-call]


def build_pool(
    options: RedisOptions, target: ConnectionTarget, *, cluster_router: object | None = None
) -> ConnectionPool:
    """A bounded pool for a TCP, TLS or unix-socket target: callers wait for a free connection
    (up to ``socket_timeout``) instead of failing, and a command is retried ``retries`` times at
    once on a fresh connection after a connection error. With ``cluster_router``, a pool of
    one cluster node, whose connections keep the router's slot map current (:mod:`._cluster`)."""
    kwargs: dict[str, Any] = {
        "db": options.db,
        "username": target.username,
        "password": target.password,
        "socket_timeout": options.socket_timeout,
        "socket_connect_timeout": options.socket_connect_timeout,
        "health_check_interval": options.health_check_interval,
        "client_name": options.client_name,
        "retry": Retry(NoBackoff(), options.retries),
        **_driver_info(),
    }
    connection_class: type[AbstractConnection]
    if target.kind == "unix":
        connection_class = UnixDomainSocketConnection
        kwargs["path"] = target.path
    else:
        kwargs.update(host=target.host, port=target.port, socket_keepalive=True)
        connection_class = Connection
        if target.ssl:
            connection_class = SSLConnection
            kwargs.update(
                ssl_cert_reqs=options.ssl_cert_reqs,
                ssl_ca_certs=options.ssl_ca_certs,
                ssl_ca_path=options.ssl_ca_path,
                ssl_certfile=options.ssl_certfile,
                ssl_keyfile=options.ssl_keyfile,
                ssl_check_hostname=options.ssl_check_hostname,
            )
    if cluster_router is not None:
        from ._cluster import ClusterNodeConnection, ClusterNodeSSLConnection

        connection_class = ClusterNodeSSLConnection if target.ssl else ClusterNodeConnection
        kwargs["cluster_router"] = cluster_router
    return BlockingConnectionPool(
        connection_class=connection_class,
        max_connections=options.max_connections,
        timeout=options.socket_timeout,
        **kwargs,
    )


@functools.cache
def _driver_info() -> dict[str, Any]:
    """The ``driver_info`` every connection of our pools is given: the one redis-py would make
    (name ``redis-py``, its installed version, for ``CLIENT SETINFO``), made once. redis-py 6+
    otherwise makes one per connection, reading its own package metadata with
    ``importlib.metadata`` each time: ~1.5 ms of CPU for every connection opened, twice on the
    way to a subscription's first acknowledged event (its read and command connections). Older
    redis-py read the version once, at import, and take no ``driver_info``."""
    try:
        from redis.driver_info import DriverInfo
    except ImportError:
        return {}
    return {"driver_info": DriverInfo()}


_fake_servers: dict[str, Any] = {}
_fake_lock = threading.Lock()


def fake_server(name: str) -> Any:
    """The in-process ``fakeredis.FakeServer`` behind ``fakeredis://<name>`` (names are
    case-insensitive; ``""`` is the process-wide default server), created on first use and kept
    for the life of the process, so backends opened on the same URL share data."""
    import fakeredis

    name = name.lower()
    with _fake_lock:
        server = _fake_servers.get(name)
        if server is None:
            server = _fake_servers[name] = fakeredis.FakeServer()
        return server


def fake_pool(target: ConnectionTarget) -> ConnectionPool:
    """A pool on the fakeredis server a ``fakeredis://`` URL names."""
    import fakeredis

    server = fake_server(target.fake_name)
    pool: ConnectionPool = fakeredis.FakeAsyncRedis(server=server).connection_pool
    return pool


def is_fake_pool(pool: ConnectionPool) -> bool:
    """True when ``pool`` makes fakeredis connections."""
    return pool.connection_class.__module__.partition(".")[0] == "fakeredis"


class DedicatedConnection:
    """One connection, owned by one consumer or reader, for its reads.

    It is made from the shared pool's settings but is not part of the pool, so a blocked read
    never holds a pooled connection. A read waits with its own deadline (the server-side wait
    plus ``grace``), never tripping the socket timeout. A read cancelled (or interrupted)
    mid-flight disconnects the connection, which reconnects on the next read, so no half-read
    reply is ever reused.

    With ``poll`` (fakeredis), waiting is done client-side by repeating a non-blocking read:
    cancelling a fakeredis blocking read leaves a server-side waiter behind that can swallow an
    entry meant for the next read.
    """

    def __init__(
        self,
        pool: ConnectionPool,
        *,
        poll: bool,
        grace: float | None,
        route: Callable[[], ConnectionPool] | None = None,
    ) -> None:
        """``route``: on Redis Cluster, the pool of the node serving the key now; a connection
        made from another pool is closed before the next read and made again from that one."""
        self._pool = pool
        self._route = route
        self._poll = poll
        self._grace = grace
        self._conn: AbstractConnection | None = None
        self._lock = anyio.Lock()
        self._scopes: set[anyio.CancelScope] = set()
        self._closed = False

    async def connect(self) -> None:
        """Connect now rather than on the first read (done when a handle opens, so the first
        read does not pay for the handshake and a dead server shows at once)."""
        async with self._lock:
            if (route := self._route) is not None:
                await self._follow_route(route)
            conn = self._connection()
            try:
                await conn.connect()  # type: ignore[no-untyped-call]
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await conn.disconnect(nowait=True)
                raise

    async def _follow_route(self, route: Callable[[], ConnectionPool]) -> None:
        pool = route()
        if pool is not self._pool:  # the key's slot moved to another node
            self._pool = pool
            conn, self._conn = self._conn, None
            if conn is not None:
                with anyio.CancelScope(shield=True):
                    await conn.disconnect(nowait=True)

    def _connection(self) -> AbstractConnection:
        if self._conn is None:
            self._conn = self._pool.make_connection()  # type: ignore[no-untyped-call]
        return self._conn

    async def read(self, command: ReadCommand, block_ms: int) -> Any:
        """Run ``command`` waiting up to ``block_ms`` for data; return the raw reply.

        :raises Interrupted: :meth:`interrupt` or :meth:`aclose` was called.
        :raises redis.exceptions.RedisError: from the server or the connection.
        :raises TimeoutError: no reply within the deadline (the connection is dropped).
        """
        if self._poll and block_ms > 0:
            return await self._interruptible(lambda: self._poll_read(command, block_ms))
        return await self._interruptible(
            lambda: self._roundtrip(command(block_ms), block_ms / 1000)
        )

    async def read_after(
        self,
        first: Sequence[Any],
        command: ReadCommand,
        block_ms: int = 0,
        *,
        first_may_fail: bool = False,
    ) -> tuple[Any, Any]:
        """Send ``first`` and ``command`` (waiting up to ``block_ms``) in one write and return
        both raw replies: Redis runs a client's pipelined commands back to back, so ``first`` (a
        check) sees the state the read then reads from. An error reply to either is raised once
        both are read, the first one first, with the connection left in sync; with
        ``first_may_fail``, an error reply to ``first`` is returned (a ``ResponseError``)
        instead. On a polled server (fakeredis) a blocking ``command`` is polled after ``first``.

        :raises Interrupted: :meth:`interrupt` or :meth:`aclose` was called.
        :raises redis.exceptions.RedisError: from the server or the connection.
        :raises TimeoutError: no reply within the deadline (the connection is dropped).
        """
        if self._poll and block_ms > 0:
            head: Any
            try:
                head = await self._interruptible(lambda: self._roundtrip(first, 0.0))
            except rex.ResponseError as exc:
                if not first_may_fail:
                    raise
                head = exc
            return head, await self.read(command, block_ms)
        return await self._interruptible(
            lambda: self._roundtrip_pair(
                first, command(block_ms), block_ms / 1000, first_may_fail=first_may_fail
            )
        )

    async def _interruptible(self, roundtrip: Callable[[], Awaitable[T]]) -> T:
        """Run ``roundtrip`` alone on the connection, ended at once by :meth:`interrupt`.

        :raises Interrupted: :meth:`interrupt` or :meth:`aclose` was called.
        """
        with anyio.CancelScope() as scope:
            self._scopes.add(scope)
            try:
                if self._closed:
                    raise Interrupted
                async with self._lock:
                    return await roundtrip()
            finally:
                self._scopes.discard(scope)
        raise Interrupted

    async def _roundtrip_pair(
        self,
        first: Sequence[Any],
        second: Sequence[Any],
        wait: float = 0.0,
        *,
        first_may_fail: bool = False,
    ) -> tuple[Any, Any]:
        if (route := self._route) is not None:
            await self._follow_route(route)
        conn = self._connection()
        replies: list[Any] = []
        try:
            with anyio.fail_after(None if self._grace is None else wait + self._grace):
                await conn.send_packed_command(conn.pack_commands([first, second]))
                for _ in range(2):
                    try:
                        replies.append(
                            await conn.read_response(timeout=None if self._poll else math.inf)
                        )
                    except rex.ResponseError as exc:  # an error reply: the connection is in sync
                        replies.append(exc)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await conn.disconnect(nowait=True)
            if type(exc) is TimeoutError and self._grace is not None:
                raise rex.TimeoutError(f"no reply to a read within {self._grace:.3g} s") from exc
            raise
        for reply in replies[1:] if first_may_fail else replies:
            if isinstance(reply, rex.ResponseError):
                raise reply
        return replies[0], replies[1]

    async def _poll_read(self, command: ReadCommand, block_ms: int) -> Any:
        deadline = anyio.current_time() + block_ms / 1000
        delay = _POLL_MIN
        while True:
            reply = await self._roundtrip(command(0), 0.0)
            remaining = deadline - anyio.current_time()
            if reply or remaining <= 0:
                return reply
            await anyio.sleep(min(delay, remaining))
            delay = min(delay * 2, _POLL_MAX)

    async def _roundtrip(self, args: Sequence[Any], wait: float) -> Any:
        if (route := self._route) is not None:
            await self._follow_route(route)
        conn = self._connection()
        limit = None if self._grace is None else wait + self._grace
        try:
            with anyio.fail_after(limit):
                await conn.send_command(*args)
                # math.inf: no socket timeout on this read, the deadline above bounds it.
                return await conn.read_response(timeout=None if self._poll else math.inf)
        except rex.ResponseError:
            raise  # an error reply: the connection is in sync and stays open
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await conn.disconnect(nowait=True)
            if type(exc) is TimeoutError and limit is not None:
                raise rex.TimeoutError(f"no reply to a read within {limit:.3g} s") from exc
            raise

    def interrupt(self) -> None:
        """Make reads in progress raise :class:`Interrupted` at once."""
        for scope in list(self._scopes):
            scope.cancel()

    async def aclose(self) -> None:
        """Interrupt reads and close the connection. Idempotent."""
        self._closed = True
        self.interrupt()
        conn, self._conn = self._conn, None
        if conn is not None:
            with anyio.CancelScope(shield=True):
                await conn.disconnect(nowait=True)


def describe_pool(pool: ConnectionPool) -> str:
    """What a caller-owned pool connects to, password-free (a backend's description)."""
    kwargs: dict[str, Any] = pool.connection_kwargs
    db = kwargs.get("db", 0)
    if is_fake_pool(pool):
        return "fakeredis://(caller-owned client)"
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}?db={db}"
    scheme = "rediss" if issubclass(pool.connection_class, SSLConnection) else "redis"
    return f"{scheme}://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{db}"


def require_asyncio(scheme: str) -> None:
    """Refuse to open outside asyncio: redis.asyncio runs on it only."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise ConfigurationError(
            f"{scheme}:// runs on asyncio only (redis.asyncio); use memory:// under trio"
        ) from None
