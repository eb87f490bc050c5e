"""The command connection: one connection for the hot commands (appends and acks), pipelined in
one write, that can tell what became of a call whose reply it never got (see
:class:`CommandConnection`)."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from typing import Any

import anyio
import redis.exceptions as rex
from redis.asyncio.connection import AbstractConnection, ConnectionPool

__all__ = ["CommandConnection", "Unanswered"]

_log = logging.getLogger("streamsink_redis")


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

    async def run(self, commands: Sequence[Sequence[Any]], *, wait: float = 0.0) -> list[Any]:
        """Send ``commands`` in one round trip and return their raw replies in order, sending
        them again on a fresh connection after a connection failure or a missed deadline (up to
        ``retries`` times): for idempotent commands only. An error reply comes back as its
        :class:`redis.exceptions.ResponseError`, not raised (the other commands of the call
        did run). ``wait``: seconds a command may block on the server (``WAIT``), added to
        the deadline.

        :raises redis.exceptions.ConnectionError: closed, or the connection failed every try.
        :raises redis.exceptions.TimeoutError: no complete answer within the deadline, every try.
        """
        async with self.lock:
            tries = 0
            while True:
                try:
                    # Acks (no wait) call attempt as they always did.
                    return await (
                        self.attempt(commands, wait=wait) if wait else self.attempt(commands)
                    )
                except (rex.ConnectionError, rex.TimeoutError):
                    tries += 1
                    if self._closed or tries > self.retries:
                        raise

    async def attempt(self, commands: Sequence[Sequence[Any]], *, wait: float = 0.0) -> list[Any]:
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
            async with asyncio.timeout(None if self._timeout is None else self._timeout + wait):
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
