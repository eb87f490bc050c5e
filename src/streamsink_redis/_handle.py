"""What group consumers and fan-out readers share: the backend context, their state (open,
closed, destroyed) and the error translation that knows about it."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import anyio
import attrs
import redis.asyncio as aioredis
from redis.asyncio.connection import ConnectionPool

from streamsink import BackendClosedError, ConfigurationError, StreamsinkError
from streamsink.backend import GroupLostError, StreamDestroyedError

from ._commands import CommandConnection
from ._connection import DedicatedConnection, Interrupted, ReadCommand
from ._errors import Operation, is_driver_error, map_redis_errors
from ._options import RedisOptions
from ._positions import Script

__all__ = ["Context", "Handle"]

_log = logging.getLogger("streamsink_redis")

CLEANUP_TIMEOUT = 1.0
"""Seconds ``aclose`` may spend on best-effort cleanup in Redis before giving up."""


@attrs.frozen
class Context:
    """The backend's shared state, handed to every handle it opens."""

    client: aioredis.Redis  # raw replies, on the shared pool
    pool: ConnectionPool
    options: RedisOptions
    where: str  # password-free description for messages
    poll: bool  # fakeredis: wait client-side, see DedicatedConnection
    grace: float | None  # extra time a blocking read may take beyond its wait
    # Redis Cluster: the context of the master serving a key now (None on one server)
    route: Callable[[str], Context] | None = None
    # appends and acks: one connection, one round trip per (coalesced) call; closed by the backend
    commands: CommandConnection = attrs.field(init=False)

    @commands.default
    def _commands(self) -> CommandConnection:
        return CommandConnection(
            self.pool, poll=self.poll, timeout=self.grace, retries=self.options.retries
        )

    def on(self, key: str) -> Context:
        """The context of the server that serves ``key``: this one, except on Redis Cluster."""
        route = self.route
        return self if route is None else route(key)

    def dedicated(self, key: str) -> DedicatedConnection:
        """A dedicated connection for reads of ``key`` (following its slot on Redis Cluster)."""
        route = self.route
        if route is None:
            return DedicatedConnection(self.pool, poll=self.poll, grace=self.grace)
        return DedicatedConnection(
            route(key).pool, poll=self.poll, grace=self.grace, route=lambda: route(key).pool
        )

    @property
    def pulse_keepalive(self) -> bool:
        """Group consumers take part in pulse's keep-alive (the ``pulse_keepalive`` option).

        :raises ConfigurationError: ``pulse_keepalive=True`` on fakeredis.
        """
        return self.options.keepalive_on(fake=self.poll)


class Handle:
    """Base of :class:`RedisGroupConsumer` and :class:`RedisStreamReader`."""

    def __init__(
        self,
        ctx: Context,
        stream_id: str,
        key: str,
        on_close: Callable[[Handle], None],
    ) -> None:
        self._home = ctx
        self._stream_id = stream_id
        self._key = key
        self._on_close = on_close
        self._reads = ctx.dedicated(key)
        self._closed = False
        self._destroying = False
        self._destroyed = False

    @property
    def key(self) -> str:
        """The Redis key of the stream."""
        return self._key

    @property
    def _ctx(self) -> Context:
        """The context of the server serving the stream's key now (on Redis Cluster, the
        master of its slot: it may change between two calls)."""
        return self._home.on(self._key)

    async def connect(self) -> None:
        """Open the dedicated read connection now (see :meth:`DedicatedConnection.connect`)."""
        with self._errors("read"):
            await self._reads.connect()

    # -- destroy through the owning backend ---------------------------------------------------

    def begin_destroy(self) -> None:
        """The backend is about to DEL the stream: a lost group now means "destroyed"."""
        self._destroying = True

    def abort_destroy(self) -> None:
        """The DEL failed; the stream is still there."""
        self._destroying = False

    def finish_destroy(self) -> None:
        """The stream is gone: end reads in progress; every later call raises
        :class:`StreamDestroyedError`."""
        self._destroyed = True
        self._reads.interrupt()

    # -- helpers for subclasses ---------------------------------------------------------------

    def _check(self) -> None:
        if self._closed:
            raise BackendClosedError(f"{self._describe()} is closed")
        if self._destroyed:
            raise self._destroyed_error()

    def _describe(self) -> str:
        return f"redis handle on stream {self._stream_id!r}"

    def _destroyed_error(self) -> StreamDestroyedError:
        return StreamDestroyedError(f"stream {self._stream_id!r} was destroyed")

    @contextmanager
    def _errors(self, operation: Operation) -> Iterator[None]:
        try:
            with map_redis_errors(operation, self._ctx.where):
                try:
                    yield
                except Interrupted:
                    if self._destroyed or self._destroying:
                        raise self._destroyed_error() from None
                    raise BackendClosedError(
                        f"{self._describe()} was closed during a read"
                    ) from None
        except GroupLostError as exc:
            if self._destroyed or self._destroying:
                raise self._destroyed_error() from exc
            raise

    async def _checked_read(
        self, script: Script, args: Sequence[Any], command: ReadCommand
    ) -> tuple[Any, Any]:
        """Run ``script`` on this stream's key and then ``command`` (not blocking) in one round
        trip on the dedicated read connection, so the check sees what the read reads from.
        Both raw replies.

        The script goes as text (``EVAL``), not by its SHA: were the server's script cache
        empty (a restart, ``SCRIPT FLUSH``), ``EVALSHA`` would fail while the read after it
        went ahead unchecked, and its entries could not be sent again."""
        return await self._reads.read_after(script.eval((self._key,), args), command)

    def _count(self, count: int) -> int:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigurationError(f"count must be a positive integer, got {count!r}")
        return min(count, self._ctx.options.count)

    def _block_ms(self, block: float) -> int:
        if not block > 0:  # also NaN
            return 0
        if math.isinf(block):
            return self._ctx.options.block_ms
        return max(1, min(math.ceil(block * 1000), self._ctx.options.block_ms))

    async def _cleanup(self) -> None:
        """Best-effort state removal in Redis on close; subclasses override."""

    async def _forget(self) -> None:
        """Best-effort removal, on close, of state kept outside the stream after the stream was
        destroyed through the backend; subclasses override."""

    # -- closing ------------------------------------------------------------------------------

    async def abandon(self) -> None:
        """Close without touching Redis (the handle never got going)."""
        if not self._closed:
            self._closed = True
            self._on_close(self)
            await self._reads.aclose()

    async def aclose(self) -> None:
        """Interrupt reads, close the dedicated connection, clean up. Idempotent; never raises
        a backend error (cleanup is best effort, bounded by ``CLEANUP_TIMEOUT``)."""
        if self._closed:
            return
        self._closed = True
        self._on_close(self)
        with anyio.move_on_after(CLEANUP_TIMEOUT, shield=True):
            await self._reads.aclose()
            try:
                if self._destroyed or self._destroying:
                    await self._forget()
                else:
                    await self._cleanup()
            except (StreamsinkError, OSError) as exc:
                _log.debug("cleanup of %s failed: %s", self._describe(), exc)
            except Exception as exc:
                if not is_driver_error(exc):
                    raise
                _log.debug("cleanup of %s failed: %s", self._describe(), exc)
