"""``LaneConnection``: the read connection of one lane of shared reads, whose blocking ``XREAD``
another task can end at once with ``CLIENT UNBLOCK`` (sent on the command connection) instead
of dropping the connection."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import anyio
import redis.exceptions as rex
from redis.asyncio.connection import AbstractConnection, ConnectionPool

from streamsink import BackendClosedError

from ._commands import CommandConnection
from ._connection import ReadCommand

__all__ = ["NOT_READ", "LaneConnection"]

_log = logging.getLogger("streamsink_redis")
T = TypeVar("T")

#: tries of CLIENT UNBLOCK while the XREAD has not reached the server yet, before cancelling it
_UNBLOCK_TRIES = 8
_POLL_MIN = 0.002
_POLL_MAX = 0.02

NOT_READ: Any = object()
"""What :meth:`LaneConnection.read` returns when an interrupt ended it before the server ran it
(or by cancelling it): no reply, so nothing is known about the streams."""


class LaneConnection:
    """One connection, outside the pool, for one lane's reads: one read at a time (the hub
    guarantees it). A read cancelled mid-flight drops the connection (no half-read reply is ever
    reused); the next read reconnects. It learns its ``CLIENT ID`` when it connects, so that
    :meth:`interrupt` can end a blocked ``XREAD`` with ``CLIENT UNBLOCK`` and keep the connection;
    where the server refuses ``CLIENT ID`` or ``CLIENT UNBLOCK`` (ACLs), interrupting cancels
    the read instead (the connection is dropped and made again).

    With ``poll`` (fakeredis), a blocking read is non-blocking reads repeated, and an interrupt
    wakes the wait between two of them.
    """

    def __init__(
        self, pool: ConnectionPool, commands: CommandConnection, *, poll: bool, grace: float | None
    ) -> None:
        self._pool = pool
        self._commands = commands
        self._poll = poll
        self._grace = grace
        self._conn: AbstractConnection | None = None
        self._client_id: int | None = None
        self._unblock = not poll  # False once the server refused CLIENT ID or CLIENT UNBLOCK
        self._scope: anyio.CancelScope | None = None  # of the read in flight
        self._sent = False  # the read in flight was sent (an interrupt must reach the server)
        self._requested = False  # an interrupt came for the read call in progress
        self._call = 0  # read calls begun (a call is a check round trip, then maybe a block)
        self._in_call = False
        self._poke: anyio.Event | None = None
        self._closed = False

    def begin(self) -> None:
        """A read call (one or two round trips) starts: an interrupt from now on ends it."""
        self._call += 1
        self._requested = False
        self._in_call = True

    def end(self) -> None:
        """The read call is over: interrupts are for the next one."""
        self._in_call = False

    async def run(self, commands: Sequence[Sequence[Any]]) -> list[Any] | None:
        """Send ``commands`` (none blocking) in one write and read their replies (error replies as
        :class:`redis.exceptions.ResponseError` values). None when :meth:`interrupt` ended it
        first (only before it was sent: it does not wait).

        :raises BackendClosedError: the lane was closed.
        :raises redis.exceptions.RedisError: the connection failed (it is dropped).
        """
        return await self._interruptible(lambda: self._roundtrip(commands, 0))

    async def read(self, command: ReadCommand, block_ms: int) -> Any:
        """Run ``command(block_ms)`` (an ``XREAD ... BLOCK``), waiting up to ``block_ms`` for a
        reply. :meth:`interrupt` ends it: with the server's nil reply (as a timeout) when
        ``CLIENT UNBLOCK`` did, else :data:`NOT_READ`.

        :raises BackendClosedError: the lane was closed.
        :raises redis.exceptions.RedisError: the connection failed (it is dropped).
        """
        if self._poll:
            reply = await self._interruptible(lambda: self._poll_read(command, block_ms))
            return NOT_READ if reply is None else reply
        replies = await self._interruptible(lambda: self._roundtrip([command(block_ms)], block_ms))
        return NOT_READ if replies is None else _raised(replies)[0]

    async def _interruptible(self, roundtrip: Callable[[], Awaitable[T]]) -> T | None:
        if self._closed:
            raise BackendClosedError("the shared read connection is closed")
        result: T | None = None
        with anyio.CancelScope() as scope:
            self._scope = scope
            try:
                result = await roundtrip()
            except Exception:
                if self._closed:
                    # Closing dropped the connection under the read: redis-py may then fail
                    # in its own ways (a writer already gone), which mean only that.
                    raise BackendClosedError(
                        "the shared read connection was closed during a read"
                    ) from None
                raise
            finally:
                self._scope = None
                self._sent = False
        if self._closed:
            raise BackendClosedError("the shared read connection was closed during a read")
        return None if scope.cancelled_caught else result

    async def _roundtrip(
        self, commands: Sequence[Sequence[Any]], block_ms: int
    ) -> list[Any] | None:
        conn = await self._connected()
        if self._requested:
            return None  # interrupted before it was sent: nothing to undo
        limit = None if self._grace is None else block_ms / 1000 + self._grace
        replies: list[Any] = []
        try:
            with anyio.fail_after(limit):
                self._sent = True
                await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
                for _ in commands:
                    try:
                        replies.append(
                            await conn.read_response(timeout=None if self._poll else math.inf)
                        )
                    except rex.ResponseError as exc:  # an error reply: still in sync
                        replies.append(exc)
        except BaseException as exc:
            await self._drop()
            if type(exc) is TimeoutError and limit is not None:
                raise rex.TimeoutError(f"no reply to a shared read within {limit:.3g} s") from exc
            raise
        return replies

    async def _poll_read(self, command: ReadCommand, block_ms: int) -> Any:
        deadline = anyio.current_time() + block_ms / 1000
        delay = _POLL_MIN
        while True:
            replies = await self._roundtrip([command(0)], 0)
            if replies is None:
                return None
            (reply,) = _raised(replies)
            remaining = deadline - anyio.current_time()
            if reply or remaining <= 0 or self._requested:
                return reply or []
            self._sent = True  # waiting: an interrupt pokes
            poke = self._poke = anyio.Event()
            with anyio.move_on_after(min(delay, remaining)):
                await poke.wait()
            self._poke = None
            if self.requested():
                return []  # read, nothing there: as a nil reply
            delay = min(delay * 2, _POLL_MAX)

    async def _connected(self) -> AbstractConnection:
        conn = self._conn
        if conn is None:
            conn = self._conn = self._pool.make_connection()  # type: ignore[no-untyped-call]
        if not conn.is_connected:
            try:
                await conn.connect()
                self._client_id = None
                if self._unblock:
                    await conn.send_command("CLIENT", "ID")
                    try:
                        reply = await conn.read_response(timeout=math.inf)
                    except rex.ResponseError as exc:
                        self._refused("CLIENT ID", exc)
                    else:
                        self._client_id = reply if isinstance(reply, int) else None
            except BaseException:
                await self._drop()
                raise
        return conn

    def requested(self) -> bool:
        """An interrupt came for the read in flight."""
        return self._requested

    def _refused(self, command: str, error: object) -> None:
        if self._unblock:
            self._unblock = False
            _log.warning(
                "redis refused %s (%s): a reader joining a blocked shared read cancels it "
                "(and reconnects) instead; allow +client|id +client|unblock to avoid that",
                command,
                error,
            )

    async def interrupt(self) -> None:
        """End the read call in progress now, without error; a no-op without one."""
        self._requested = True
        call = self._call
        delay = 0.001
        for _ in range(_UNBLOCK_TRIES):
            scope = self._scope
            if not self._in_call or self._call != call or scope is None or not self._sent:
                return  # over, or it sees the request before it sends its next command
            if self._poll:
                if self._poke is not None:
                    self._poke.set()
                return
            client_id = self._client_id
            if client_id is None or not self._unblock:
                break
            try:
                (reply,) = await self._commands.run([["CLIENT", "UNBLOCK", client_id]])
            except (rex.ConnectionError, rex.TimeoutError):
                break
            if isinstance(reply, rex.ResponseError):
                self._refused("CLIENT UNBLOCK", reply)
                break
            if reply == 1:
                return
            # 0: the XREAD has not reached the server yet, or its reply is on its way back
            await anyio.sleep(delay)
            delay *= 2
        scope = self._scope
        if self._in_call and self._call == call and scope is not None:
            scope.cancel()  # the last resort: the connection is dropped and made again

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self._client_id = None
        if conn is not None:
            with anyio.CancelScope(shield=True):
                await conn.disconnect(nowait=True)

    async def aclose(self) -> None:
        """End the read in flight (it raises BackendClosedError) and close. Idempotent."""
        self._closed = True
        if self._scope is not None:
            self._scope.cancel()
        await self._drop()


def _raised(replies: list[Any]) -> list[Any]:
    """``replies``, raising the first error reply among them."""
    for reply in replies:
        if isinstance(reply, rex.ResponseError):
            raise reply
    return replies
