"""Connections: the shared pool for short commands, one connection for the hot ones (appends and
acks), and one dedicated, cancel-safe connection per consumer or reader for its blocking reads."""

from __future__ import annotations

import asyncio
import logging
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

from ._options import ConnectionTarget, RedisOptions

__all__ = [
    "CommandConnection",
    "DedicatedConnection",
    "Interrupted",
    "ReadCommand",
    "Unanswered",
    "build_pool",
    "execute",
    "fake_pool",
    "fake_server",
    "is_fake_pool",
    "raw_client",
]

_log = logging.getLogger("streamsink_redis")

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


def build_pool(options: RedisOptions, target: ConnectionTarget) -> ConnectionPool:
    """A bounded pool for a TCP, TLS or unix-socket target: callers wait for a free connection
    (up to ``socket_timeout``) instead of failing, and a command is retried ``retries`` times at
    once on a fresh connection after a connection error."""
    kwargs: dict[str, Any] = {
        "db": options.db,
        "username": target.username,
        "password": target.password,
        "socket_timeout": options.socket_timeout,
        "socket_connect_timeout": options.socket_connect_timeout,
        "health_check_interval": options.health_check_interval,
        "client_name": options.client_name,
        "retry": Retry(NoBackoff(), options.retries),
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
    return BlockingConnectionPool(
        connection_class=connection_class,
        max_connections=options.max_connections,
        timeout=options.socket_timeout,
        **kwargs,
    )


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

    def __init__(self, pool: ConnectionPool, *, poll: bool, grace: float | None) -> None:
        self._pool = pool
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
            conn = self._connection()
            try:
                await conn.connect()  # type: ignore[no-untyped-call]
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await conn.disconnect(nowait=True)
                raise

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


class Unanswered(rex.ConnectionError):
    """A round trip of :class:`CommandConnection` that failed after its commands began to go out:
    those without a reply may or may not have run.

    ``replies`` holds the replies read before the failure, in order (error replies as
    :class:`redis.exceptions.ResponseError`). ``client_id`` is the server's ``CLIENT ID`` of the
    connection, None when it was not learned. ``closed`` is True when the connection failed or
    its peer closed it, False when the deadline passed with the connection still open (so its
    unsent or unread bytes may yet reach the server).
    """

    def __init__(
        self, message: str, *, replies: list[Any], client_id: int | None, closed: bool
    ) -> None:
        super().__init__(message)
        self.replies = replies
        self.client_id = client_id
        self.closed = closed


_CLIENT_ID = b"*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n"


class CommandConnection:
    """One connection for the hot short commands (``XADD``, ``XACK``), one round trip at a time.

    On a small machine redis-py's client path (pool checkout under a condition and a timeout,
    the retry wrapper, a timeout around each reply read) costs more CPU than the round trip
    itself. Appends and acks are the hot path, and the core already coalesces concurrent ones
    into one call, so they go through this connection instead of the pool: the commands of a call
    are packed into one write and their replies read in order under a single deadline
    (``timeout``, the socket timeout). A round trip that did not finish (cancelled, failed, timed
    out) drops the connection, so no half-read reply is ever reused.

    Acks (:meth:`run`) are idempotent and simply go again on a fresh connection, up to
    ``retries`` times. Appends go through :attr:`appender` (:class:`._append.Appender`), which
    never sends an ``XADD`` twice: it uses :meth:`attempt` and the server-side id each
    connection learns when it connects (``CLIENT ID``, pipelined in front of its first command,
    so it costs no round trip) to close a failed connection before retrying.

    With ``poll`` (fakeredis, in process) there is no network to lose a reply and no
    ``CLIENT ID``: connections learn no id and are never fenced.
    """

    def __init__(
        self, pool: ConnectionPool, *, poll: bool, timeout: float | None, retries: int
    ) -> None:
        # Imported here: the appender is built on this module (Unanswered, attempt).
        from ._append import Appender

        self._pool = pool
        self._timeout = timeout
        self.retries = retries
        """Retries of a call after a connection failure or a missed deadline."""
        self._poll = poll
        # fakeredis reads wait forever on None; redis-py needs math.inf for "no socket timeout".
        self._read_timeout = None if poll else math.inf
        self._conn: AbstractConnection | None = None
        self._conn_id: int | None = None  # the server's CLIENT ID of _conn, once learned
        self._learn_ids = not poll
        self._fencing = not poll
        self.lock = asyncio.Lock()
        """Held for one call: a round trip, or an append with its retries."""
        self._closed = False
        self.appender = Appender(self)
        """Appends, retry-safe."""

    @property
    def fencing(self) -> bool:
        """Whether a failed connection can be closed server-side before a retry: ids are
        learned and ``CLIENT KILL`` was not refused."""
        return self._fencing and self._learn_ids

    def fencing_refused(self, command: str, error: object) -> None:
        """The server refused ``CLIENT ID`` or ``CLIENT KILL``: stop fencing (logged once)."""
        if self._fencing:
            self._fencing = False
            _log.warning(
                "redis refused %s (%s): a retried append cannot close the connection that "
                "failed first, so a delayed copy of a lost XADD may still be written after the "
                "retry; allow CLIENT ID and CLIENT KILL (+client|id +client|kill) to close that "
                "window",
                command,
                error,
            )

    async def run(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Send ``commands`` in one round trip and return their raw replies in order, sending
        them again on a fresh connection after a connection failure or a missed deadline (up to
        ``retries`` times): for idempotent commands only. An error reply comes back as its
        :class:`redis.exceptions.ResponseError`, not raised (the other commands of the call
        did run).

        :raises redis.exceptions.ConnectionError: closed, or the connection failed every try.
        :raises redis.exceptions.TimeoutError: no complete answer within the deadline, every try.
        """
        async with self.lock:
            tries = 0
            while True:
                try:
                    return await self.attempt(commands)
                except (rex.ConnectionError, rex.TimeoutError):
                    tries += 1
                    if self._closed or tries > self.retries:
                        raise

    async def attempt(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """One round trip, no retry; the caller holds :attr:`lock`. Replies as for :meth:`run`.

        A fresh connection connects first, then learns its ``CLIENT ID`` from a command
        pipelined in front of ``commands``.

        :raises Unanswered: the connection failed or the deadline passed after the commands began
            to go out.
        :raises redis.exceptions.ConnectionError: closed, or the connection could not be made
            (nothing was sent; a refused login raises its own subclass).
        :raises redis.exceptions.TimeoutError: no connection within the deadline (nothing sent).
        """
        if self._closed:
            raise rex.ConnectionError("the backend's command connection is closed")
        conn = self._connection()
        replies: list[Any] = []
        sending = False
        try:
            async with asyncio.timeout(self._timeout):
                learn = False
                if not conn.is_connected:
                    await conn.connect()  # type: ignore[no-untyped-call]
                    learn = self._learn_ids
                packed = _pack(commands, conn.encoder)
                sending = True
                # No health check: it may reconnect behind our back (a new server-side id);
                # the deadline and the drop-on-failure below do its job.
                await conn.send_packed_command(
                    _CLIENT_ID + packed if learn else packed, check_health=False
                )
                read, timeout = conn.read_response, self._read_timeout
                if learn:
                    try:
                        self._learn_id(await read(timeout=timeout))
                    except rex.ResponseError as exc:
                        self._learn_id(exc)
                for _ in commands:
                    try:
                        replies.append(await read(timeout=timeout))
                    except rex.ResponseError as exc:  # an error reply: the connection is in sync
                        replies.append(exc)
        except BaseException as exc:
            client_id = self._conn_id
            self._conn = None
            self._conn_id = None
            with anyio.CancelScope(shield=True):
                await conn.disconnect(nowait=True)
            timed_out = type(exc) is TimeoutError or isinstance(exc, rex.TimeoutError)
            if type(exc) is TimeoutError and self._timeout is not None:
                message = f"no reply to {len(commands)} command(s) within {self._timeout:.3g} s"
                if not sending:
                    raise rex.TimeoutError(message) from exc
            else:
                message = str(exc) or type(exc).__name__
            if sending and isinstance(exc, rex.ConnectionError | rex.TimeoutError | TimeoutError):
                raise Unanswered(
                    message,
                    replies=replies,
                    client_id=client_id,
                    closed=self._poll or not timed_out,
                ) from exc
            raise
        return replies

    def _learn_id(self, reply: Any) -> None:
        if isinstance(reply, rex.ResponseError) or not isinstance(reply, int):
            # A renamed or forbidden CLIENT: no ids, so no fencing (see fencing_refused).
            self._learn_ids = False
            self.fencing_refused("CLIENT ID", reply)
            return
        self._conn_id = reply

    def _connection(self) -> AbstractConnection:
        conn = self._conn
        if conn is None:
            # No socket timeout on the connection itself: with one, redis-py wraps every write
            # in asyncio.wait_for (a task per write); the round trip's deadline bounds it all,
            # the handshake of a (re)connect included.
            pool = self._pool
            kwargs = {**pool.connection_kwargs, "socket_timeout": None}
            conn = self._conn = pool.connection_class(**kwargs)
        return conn

    async def aclose(self) -> None:
        """Close the connection; later calls raise ConnectionError. Idempotent."""
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            with anyio.CancelScope(shield=True):
                await conn.disconnect(nowait=True)


_HEADERS = 1024
_ARRAY_HEADERS = [b"*%d\r\n" % n for n in range(64)]
_BULK_HEADERS = [b"$%d\r\n" % n for n in range(_HEADERS)]


def _pack(commands: Sequence[Sequence[Any]], encoder: Any) -> bytes:
    """RESP for ``commands``, as redis-py's ``pack_commands`` makes it but several times faster
    for the str, bytes and int arguments of XADD and XACK (anything else goes through
    ``encoder``). Length headers of short arguments come from tables made once: formatting one
    (``b"$%d\r\n%b\r\n" % ...``) costs about as much as the rest of the argument's packing."""
    encoding, errors = encoder.encoding, encoder.encoding_errors
    arrays, bulks = _ARRAY_HEADERS, _BULK_HEADERS
    parts: list[bytes] = []
    append = parts.append
    for args in commands:
        count = len(args)
        append(arrays[count] if count < 64 else b"*%d\r\n" % count)
        for arg in args:
            kind = type(arg)
            if kind is str:
                arg = arg.encode(encoding, errors)
            elif kind is int:
                arg = b"%d" % arg
            elif kind is not bytes:
                arg = encoder.encode(arg)
                if type(arg) is not bytes:
                    arg = bytes(arg)
            size = len(arg)
            append(bulks[size] if size < _HEADERS else b"$%d\r\n" % size)
            append(arg)
            append(b"\r\n")
    return b"".join(parts)
