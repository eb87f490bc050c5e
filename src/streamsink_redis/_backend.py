"""The Redis Streams backend, wire-compatible with goa.design/pulse."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, final

import anyio
import attrs
import redis.asyncio as aioredis
import redis.exceptions as rex
from anyio.abc import AsyncResource
from redis.asyncio.connection import ConnectionPool

from streamsink import BackendClosedError, ConfigurationError, validate_stream_id
from streamsink.backend import (
    DEFAULT_ACK_GRACE_PERIOD,
    BackendURL,
    Capabilities,
    Entry,
    StartPosition,
    StreamInfo,
)
from streamsink.backend.redis_ids import id_time

from . import _connection as connection
from . import _wire as wire
from ._capabilities import CLUSTER_CAPABILITIES, FAKEREDIS_CAPABILITIES, REDIS_CAPABILITIES
from ._cluster import ClusterRouter, open_router
from ._cluster_append import append_by_master
from ._connection import build_pool, describe_pool, execute, fake_pool, is_fake_pool, raw_client
from ._consumer import RedisGroupConsumer
from ._errors import map_redis_errors
from ._handle import Context, Handle
from ._inspect import stream_info
from ._keepalive import forget_stream
from ._keepalive_group import KeepAliveGroups
from ._operate import RedisOperations
from ._options import RedisOptions, parse_url
from ._positions import ReaderPosition, info_field
from ._reader import RedisStreamReader
from ._retention import Retention
from ._shared_read import RedisSharedReads
from ._summaries import PendingSummaries

__all__ = ["CLUSTER_CAPABILITIES", "FAKEREDIS_CAPABILITIES", "REDIS_CAPABILITIES", "RedisBackend"]


@final
class RedisBackend(RedisOperations, AsyncResource):
    """Streams on Redis (or fakeredis), laid out as goa.design/pulse lays them out.

    Open by URL (``redis://``, ``rediss://``, ``unix://``, ``fakeredis://``; a Redis Cluster
    with ``redis+cluster://`` or ``rediss+cluster://``, see :mod:`._cluster`) with
    :meth:`open` or :func:`streamsink.open_backend`, or wrap a client you own with
    :meth:`from_client`. asyncio only (``redis.asyncio``).
    """

    def __init__(
        self,
        pool: ConnectionPool,
        *,
        options: RedisOptions,
        description: str,
        owns_pool: bool,
        capabilities: Capabilities,
        grace: float | None,
        router: ClusterRouter | None = None,
    ) -> None:
        """Use :meth:`open` or :meth:`from_client`."""
        self._router = router
        self._ctx = Context(
            client=raw_client(pool),
            pool=pool,
            options=options,
            where=description,
            poll=is_fake_pool(pool),
            grace=grace,
            route=None if router is None else router.context_for,
        )
        self._ctx.commands.appender.retention = Retention.of(options)
        self._owns_pool = owns_pool
        # The suggestion is the backend's option, so it is part of this backend's declaration.
        self._capabilities = attrs.evolve(capabilities, claim_interval=options.claim_interval)
        self._handles: dict[str, set[Handle]] = {}
        # Shared by its group consumers: keep-alives refreshed together, summaries sent together.
        self._keepalives = KeepAliveGroups(self._ctx)
        self._summaries = PendingSummaries(lambda: self._ctx.client.pipeline(transaction=False))
        self._shared: set[RedisSharedReads] = set()
        self._closed = False

    # -- construction -------------------------------------------------------------------------

    @classmethod
    async def open(cls, url: str | BackendURL) -> RedisBackend:
        """Connect to the server a URL names and check it answers PING (on a cluster: learn the
        slot map from the first seed that answers).

        :raises ConfigurationError: bad URL or options, wrong credentials, or not on asyncio.
        :raises BackendUnavailableError: the server cannot be reached.
        """
        parsed = url if isinstance(url, BackendURL) else BackendURL.parse(url)
        options, target = parse_url(parsed)
        connection.require_asyncio(parsed.scheme)
        if target.kind == "cluster":
            where = target.describe(0)
            router = await open_router(options, target, where)
            return cls(
                router.home.pool,
                options=options,
                description=where,
                owns_pool=False,  # the router's: it closes every node's pool
                capabilities=CLUSTER_CAPABILITIES,
                grace=options.socket_timeout,
                router=router,
            )
        fake = target.kind == "fake"
        pool = fake_pool(target) if fake else build_pool(options, target)
        backend = cls(
            pool,
            options=options,
            description=target.describe(options.db),
            owns_pool=True,
            capabilities=FAKEREDIS_CAPABILITIES if fake else REDIS_CAPABILITIES,
            grace=options.socket_timeout,
        )
        try:
            with map_redis_errors("admin", backend.description):
                await execute(backend._ctx.client, "PING")
        except BaseException:
            await backend.aclose()
            raise
        return backend

    @classmethod
    def from_client(
        cls, client: aioredis.Redis, *, options: RedisOptions | None = None
    ) -> RedisBackend:
        """Use a ``redis.asyncio.Redis`` (or ``fakeredis.FakeAsyncRedis``) client you own.

        The backend shares the client's connection pool and settings, opens its own dedicated
        connections for blocking reads (closed by :meth:`aclose`), and never closes the client
        or its pool. Only the stream options of ``options`` apply (the client is already
        configured); the client must return bytes (``decode_responses=False``).

        :raises ConfigurationError: not an asyncio Redis client, ``decode_responses=True``, or
            connection options given.
        """
        if not isinstance(client, aioredis.Redis):
            raise ConfigurationError(
                f"from_client needs a redis.asyncio.Redis client, got {type(client).__name__}"
            )
        options = RedisOptions() if options is None else options
        changed = options.connection_fields_changed()
        if changed:
            raise ConfigurationError(
                f"connection option(s) {', '.join(changed)} do not apply to a caller-owned "
                "client; configure the client instead"
            )
        pool = client.connection_pool
        kwargs: dict[str, Any] = pool.connection_kwargs
        if kwargs.get("decode_responses"):
            raise ConfigurationError(
                "the redis backend needs a client with decode_responses=False (payloads are bytes)"
            )
        fake = is_fake_pool(pool)
        return cls(
            pool,
            options=options,
            description=describe_pool(pool),
            owns_pool=False,
            capabilities=FAKEREDIS_CAPABILITIES if fake else REDIS_CAPABILITIES,
            grace=kwargs.get("socket_timeout"),
        )

    # -- SPI ----------------------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    @property
    def description(self) -> str:
        """``scheme://location`` without credentials."""
        return self._ctx.where

    @property
    def options(self) -> RedisOptions:
        """The options in force (``claim_interval`` tells the core how often to claim)."""
        return self._ctx.options

    def key(self, stream_id: str) -> str:
        """The Redis key of a stream: ``key_prefix + stream_id``.

        :raises ConfigurationError: an invalid stream id (as pulse: 1-512 characters, none of
            space, NUL, ``*``, ``?``, ``[``, ``]``).
        """
        return self._ctx.options.key_prefix + validate_stream_id(stream_id)

    async def append(self, entries: Sequence[Entry]) -> list[str]:
        """XADD every entry (``MAXLEN ~ maxlen`` unless 0) in one pipelined round trip, on the
        backend's command connection (shared with acks). Each entry also gets an idempotency
        field, by which a retry after a lost reply finds what was already written: an entry is
        never written twice by a retry (see docs/backends.md, "Retry-safe publishing").

        :raises ConfigurationError: an invalid stream id or entry; nothing was written.
        :raises PublishError: Redis refused an entry (others may be written), or the outcome of
            some entries is unknown and they were not written again (the message says so).
        :raises DurabilityError: Redis Cluster with ``wait_replicas``: every entry is written,
            but fewer replicas than asked acknowledged it within ``wait_timeout``.
        :raises BackendUnavailableError: the connection failed every try (entries may be
            written, once at most); on Redis Cluster also a slot moving or failing over (not
            written; entries to other masters may be).
        """
        self._check()
        if not entries:
            return []
        with map_redis_errors("append", self.description):
            if self._router is None:
                return await self._ctx.commands.appender.append(
                    entries, self.key, self._ctx.options.maxlen
                )
            return await append_by_master(self._ctx, entries, self.key, self.description)

    async def open_group_consumer(
        self,
        stream_id: str,
        group: str,
        consumer: str,
        start: StartPosition,
        *,
        ack_grace_period: float = DEFAULT_ACK_GRACE_PERIOD,
    ) -> RedisGroupConsumer:
        """Create the group if needed (``XGROUP CREATE ... MKSTREAM``) and return a consumer.

        Newest is ``$``, oldest ``0``, ``after(id)`` that id, ``at(t)`` the id just before
        ``t`` (inclusive). An existing group keeps its stored position. With ``pulse_keepalive``
        on, the consumer then joins pulse's keep-alive before it exists in the group, and keeps
        it up until :meth:`RedisGroupConsumer.aclose` (see ``RedisGroupConsumer.join``), writing
        it every ``ack_grace_period`` (pulse's schedule); idle entries are claimed only by the
        core's ``claim_idle`` calls, which give their own ``min_idle``.

        :raises ConfigurationError: a bad name or start, or ``pulse_keepalive=True`` on fakeredis.
        """
        self._check()
        key = self.key(stream_id)
        wire.check_name("group", group)
        wire.check_name("consumer", consumer)
        wire.start_id(start)
        handle = RedisGroupConsumer(
            self._ctx, stream_id, key, group, consumer, self._forget, grace=ack_grace_period,
            keepalives=self._keepalives,
            # Batched summaries share one pipeline: on a cluster the keys live on many masters.
            summaries=self._summaries if self._router is None else None,
        )  # fmt: skip
        self._handles.setdefault(key, set()).add(handle)
        try:
            await handle.ensure_group(start)
            await handle.connect()
            await handle.join()
        except BaseException:
            await handle.abandon()
            raise
        return handle

    async def open_reader(self, stream_id: str, start: StartPosition) -> RedisStreamReader:
        """Open a fan-out reader; ``newest`` is resolved now to the stream's last generated id
        (``0-0`` when the stream does not exist yet), so no entry appended after this call is
        missed. Nothing is written to Redis."""
        self._check()
        key = self.key(stream_id)
        cursor = wire.start_id(start)
        pos: int | None = None
        if cursor == "$":
            cursor, pos = await self._stream_end(key)
        handle = RedisStreamReader(
            self._ctx, stream_id, key, ReaderPosition(cursor, pos, start.kind), self._forget
        )
        self._handles.setdefault(key, set()).add(handle)
        try:
            await handle.connect()
        except BaseException:
            await handle.abandon()
            raise
        return handle

    async def open_shared_reads(self) -> RedisSharedReads:
        """Shared reads for the core's fan-out hub: ``shared_read_connections`` lanes, each one
        blocking ``XREAD`` of up to ``shared_read_streams`` streams on a connection of its own
        (made on its first read); joins interrupt it with ``CLIENT UNBLOCK`` from the command
        connection, and readers catching up read there too. Closed with the backend."""
        self._check()
        if self._router is not None:
            raise ConfigurationError(
                f"{self.description}: shared reads need one XREAD across streams, which Redis "
                "Cluster refuses across slots (capabilities.shared_reads is False)"
            )
        shared = RedisSharedReads(self._ctx, self.key, self._shared.discard)
        self._shared.add(shared)
        return shared

    async def _stream_end(self, key: str) -> tuple[str, int]:
        """The stream's last generated id and how many entries it ever had (``0-0``, 0 when it
        does not exist)."""
        with map_redis_errors("read", self.description):
            try:
                info = await execute(self._ctx.on(key).client, "XINFO", "STREAM", key)
            except rex.ResponseError as exc:
                if "no such key" in str(exc).lower():
                    return "0-0", 0
                raise
        return wire.last_generated_id(info), info_field(info, "entries-added", 0)

    async def entry_time(self, stream_id: str, entry_id: str) -> datetime:
        """The time of ``entry_id``: its ``<ms>`` part, the server's clock when the entry was
        added (XADD ``*``), in UTC. Asks the server nothing; the entry need not exist.

        :raises ConfigurationError: an invalid stream id, or not a ``<ms>-<seq>`` id.
        """
        self._check()
        self.key(stream_id)
        return id_time(entry_id)

    async def stream_info(
        self, stream_id: str, *, resume_id: str | None = None
    ) -> StreamInfo | None:
        """``XINFO STREAM`` (with ``XRANGE id id`` for a ``resume_id``) in one round trip; None
        when the key does not exist. Redis keeps no trimmed-through id, so a resume id before the
        first entry is ``TRIMMED`` when entries were removed from the stream (or the server is
        older than 7 and cannot say), ``BEFORE_FIRST`` only when none ever was.

        :raises ConfigurationError: an invalid stream id, or ``resume_id`` not ``<ms>-<seq>``.
        """
        self._check()
        key = self.key(stream_id)
        return await stream_info(
            self._ctx.on(key).client, self.description, key, stream_id, resume_id
        )

    async def destroy(self, stream_id: str) -> None:
        """DEL the stream key (entries and groups). Consumers and readers opened by this backend
        on the stream raise StreamDestroyedError from their next call (blocked reads end now).
        An XADD to the key afterwards makes a new stream whose last id is ``0-0`` again: its ids
        start over from the server's clock, and in the same millisecond may repeat one the
        destroyed stream had."""
        self._check()
        key = self.key(stream_id)
        handles = list(self._handles.get(key, ()))
        for handle in handles:
            handle.begin_destroy()
        if self._ctx.options.keepalive_on(fake=self._ctx.poll):
            await forget_stream(self._ctx, key, stream_id)
        try:
            with map_redis_errors("admin", self.description):
                await execute(self._ctx.on(key).client, "DEL", key)
        except BaseException:
            for handle in handles:
                handle.abort_destroy()
            raise
        for handle in handles:
            handle.finish_destroy()
        for shared in list(self._shared):
            await shared.destroyed(key)

    async def aclose(self) -> None:
        """Close every consumer and reader opened here, then the pool if the backend made it.
        A caller-owned client is left open. Idempotent."""
        if self._closed:
            return
        self._closed = True
        handles = [handle for group in self._handles.values() for handle in group]
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as tg:
                for handle in handles:
                    tg.start_soon(handle.aclose)
                for shared in list(self._shared):
                    tg.start_soon(shared.aclose)
            await self._ctx.commands.aclose()
            if self._owns_pool:
                await self._ctx.pool.aclose()
            if self._router is not None:
                await self._router.aclose()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<RedisBackend {self.description} {state}>"

    # -- internals ----------------------------------------------------------------------------

    def _check(self) -> None:
        if self._closed:
            raise BackendClosedError(f"redis backend {self.description} is closed")

    def _forget(self, handle: Handle) -> None:
        group = self._handles.get(handle.key)
        if group is not None:
            group.discard(handle)
            if not group:
                del self._handles[handle.key]
