"""Redis Cluster (``redis+cluster://``): which master serves a key, the connections of each
master, and learning the slot map again when a slot moves or a master fails over.

Every key streamsink writes belongs to one stream, and every command and script it sends names
keys of one stream only, so each goes to the master of that key's slot, on that master's own
pool and command connection (one :class:`Context` per master). Nothing else changes: the
consumers, readers and the appender run as on one server, on the context their key maps to now.

The map is learned with ``CLUSTER SLOTS`` when the backend opens, then again whenever a node says
the map changed or cannot be reached: a ``MOVED`` reply names the slot's new master at once;
``ASK``, ``TRYAGAIN``, ``CLUSTERDOWN``, ``READONLY`` (a demoted master), a read unblocked because
the node became a replica, a refused or failed connection ask the nodes again (at most every
``REFRESH_EVERY`` seconds). Those replies become :class:`ClusterRetry`, which the backend reports
as :class:`~streamsink.BackendUnavailableError`: the call did not run, and the core retries it
with its backoff, by then on the new master, as it retries a call to a restarting server.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import anyio
import redis.exceptions as rex
from redis.asyncio.connection import AbstractConnection, Connection, SSLConnection
from redis.crc import key_slot

from streamsink import ConfigurationError

from ._connection import build_pool, raw_client
from ._errors import ClusterRetry, map_redis_errors
from ._handle import Context
from ._options import ConnectionTarget, RedisOptions
from ._retention import Retention

__all__ = ["ClusterNodeConnection", "ClusterNodeSSLConnection", "ClusterRouter", "open_router"]

_log = logging.getLogger("streamsink_redis")

SLOTS = 16384
REFRESH_EVERY = 0.05
"""Shortest time (seconds) between two ``CLUSTER SLOTS`` refreshes after failures."""

Address = tuple[str, int]


class _NodeMixin(AbstractConnection):
    """A connection to one cluster node that tells its router what the node's replies and
    failures say about the slot map. Listed before :class:`Connection` or
    :class:`SSLConnection`, whose ``connect`` and ``read_response`` its own wrap."""

    _router: ClusterRouter

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**self._take_router(kwargs))

    async def connect(self) -> None:
        await self._connect_noting(super().connect)

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        return await self._read_noting(super().read_response, *args, **kwargs)

    def _take_router(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        self._router = kwargs.pop("cluster_router")
        return kwargs

    async def _connect_noting(self, connect: Any) -> None:
        try:
            await connect()
        except (rex.ConnectionError, rex.TimeoutError, OSError):
            await self._router.failed()
            raise

    async def _read_noting(self, read: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await read(*args, **kwargs)
        except rex.MovedError as exc:
            self._router.moved(exc.slot_id, exc.host, exc.port)
            raise ClusterRetry(f"slot {exc.slot_id} moved to {exc.host}:{exc.port}") from exc
        except (rex.AskError, rex.TryAgainError, rex.ClusterDownError, rex.ReadOnlyError) as exc:
            await self._router.failed()
            raise ClusterRetry(f"the cluster is changing: {exc}") from exc
        except rex.ResponseError as exc:
            text = str(exc)
            if text.startswith("UNBLOCKED") and "state changed" in text:
                # A blocked read ended because its master became a replica (a failover).
                await self._router.failed()
                raise ClusterRetry(f"the node stopped being a master: {text}") from exc
            raise
        except (rex.ConnectionError, rex.TimeoutError, OSError):
            await self._router.failed()
            raise


class ClusterNodeConnection(_NodeMixin, Connection):
    """A TCP connection to a cluster node (see :class:`_NodeMixin`)."""


class ClusterNodeSSLConnection(_NodeMixin, SSLConnection):
    """A TLS connection to a cluster node (see :class:`_NodeMixin`)."""


class ClusterRouter:
    """The slot map of a cluster and one :class:`Context` per master it has seen.

    :meth:`context_for` is what every call of the backend asks (no I/O); the connections of the
    contexts keep the map current (:class:`_NodeMixin`).
    """

    def __init__(self, options: RedisOptions, target: ConnectionTarget, where: str) -> None:
        self._options = options
        self._target = target
        self._where = where
        self._seeds: list[Address] = list(target.seeds)
        self._slots: list[Address | None] = [None] * SLOTS
        self._nodes: dict[Address, Context] = {}
        self._key_slots: dict[str, int] = {}
        self._lock = anyio.Lock()
        self._refreshed_at = -math.inf
        self._closed = False
        self.home = self._node(self._seeds[0])
        """The context of the first seed: what the backend holds when no key is involved."""

    # -- routing ------------------------------------------------------------------------------

    def slot(self, key: str) -> int:
        """The cluster slot of ``key`` (its ``{hash tag}`` when it has one)."""
        slot = self._key_slots.get(key)
        if slot is None:
            if len(self._key_slots) > 100_000:
                self._key_slots.clear()
            slot = self._key_slots[key] = key_slot(key.encode())
        return slot

    def context_for(self, key: str) -> Context:
        """The context of the master serving ``key`` now, as far as the router knows (a node it
        does not know the slot of is asked anyway: it answers ``MOVED``)."""
        address = self._slots[self.slot(key)]
        return self.home if address is None else self._node(address)

    def masters(self) -> list[Context]:
        """The contexts of the masters of the slot map, in slot order."""
        return [self._node(address) for address in self._masters()]

    def _node(self, address: Address) -> Context:
        ctx = self._nodes.get(address)
        if ctx is None:
            host, port = address
            target = ConnectionTarget(
                kind="tcp",
                host=host,
                port=port,
                username=self._target.username,
                password=self._target.password,
                ssl=self._target.ssl,
            )
            pool = build_pool(self._options, target, cluster_router=self)
            ctx = self._nodes[address] = Context(
                client=raw_client(pool),
                pool=pool,
                options=self._options,
                where=self._where,
                poll=False,
                grace=self._options.socket_timeout,
            )
            # Appends reach the node's own command connection: it applies the retention too.
            ctx.commands.appender.retention = Retention.of(self._options)
        return ctx

    # -- learning the map ---------------------------------------------------------------------

    def moved(self, slot: int, host: str, port: int) -> None:
        """A node answered ``MOVED slot host:port``: that slot is served there now; the rest of
        the map is asked again on the next failure."""
        if 0 <= slot < SLOTS:
            self._slots[slot] = (host or self._seeds[0][0], port)

    async def failed(self) -> None:
        """A node failed or said the map is changing: ask the nodes for the map again (not more
        often than every ``REFRESH_EVERY`` seconds; never raises)."""
        if self._closed or self._recent():
            return
        try:
            async with self._lock:
                if not self._recent():  # not done meanwhile by a call that failed with this one
                    await self._refresh()
        except Exception as exc:  # a failing refresh is retried by the next failure
            _log.debug("cluster slot map refresh on %s failed: %s", self._where, exc)

    def _recent(self) -> bool:
        return anyio.current_time() - self._refreshed_at < REFRESH_EVERY

    async def refresh(self) -> None:
        """Ask the known masters, then the seeds, for ``CLUSTER SLOTS`` until one answers, and
        take its map.

        :raises redis.exceptions.RedisError: no node answered (the last node's error).
        :raises ConfigurationError: a node is not in cluster mode.
        :raises redis.exceptions.AuthenticationError: a node refused the login.
        """
        async with self._lock:
            await self._refresh()

    async def _refresh(self) -> None:
        self._refreshed_at = anyio.current_time()
        candidates = list(dict.fromkeys([*self._masters(), *self._seeds]))
        last: BaseException | None = None
        for address in candidates:
            try:
                reply = await self._ask_slots(address)
            except rex.ResponseError as exc:
                if "cluster support disabled" in str(exc):
                    raise ConfigurationError(
                        f"{self._where}: {address[0]}:{address[1]} is not a cluster node "
                        "(cluster support disabled); use redis:// for a single server"
                    ) from None
                last = exc
                continue
            except (rex.AuthenticationError, rex.AuthorizationError):
                raise
            except (rex.RedisError, OSError, TimeoutError) as exc:
                last = exc
                continue
            self._take(reply, address)
            return
        assert last is not None
        raise last

    def _masters(self) -> list[Address]:
        return list(dict.fromkeys(address for address in self._slots if address is not None))

    async def _ask_slots(self, address: Address) -> Any:
        """``CLUSTER SLOTS`` on a connection of its own (a plain one: its failure must not
        trigger another refresh)."""
        host, port = address
        pool_kwargs = dict(self.home.pool.connection_kwargs)
        pool_kwargs.pop("cluster_router", None)
        pool_kwargs.update(host=host, port=port)
        connection_class: type[AbstractConnection] = (
            SSLConnection if self._target.ssl else Connection
        )
        conn = connection_class(**pool_kwargs)
        limit = self._options.socket_connect_timeout or 5.0
        try:
            with anyio.fail_after(limit + (self._options.socket_timeout or 5.0)):
                await conn.connect()  # type: ignore[no-untyped-call]
                await conn.send_command("CLUSTER", "SLOTS")
                return await conn.read_response()
        finally:
            with anyio.CancelScope(shield=True):
                await conn.disconnect(nowait=True)

    def _take(self, reply: Any, asked: Address) -> None:
        slots: list[Address | None] = [None] * SLOTS
        for row in reply:
            first, last, master = int(row[0]), int(row[1]), row[2]
            raw_host = master[0]
            host = raw_host.decode() if isinstance(raw_host, bytes) else str(raw_host)
            if host in ("", "?"):  # the node does not know its own address: it is the one asked
                host = asked[0]
            address = (host, int(master[1]))
            for slot in range(first, last + 1):
                slots[slot] = address
        self._slots = slots
        for address in self._masters():
            self._node(address)

    # -- closing ------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close every node's command connection and pool. Idempotent."""
        self._closed = True
        with anyio.CancelScope(shield=True):
            for ctx in list(self._nodes.values()):
                await ctx.commands.aclose()
                await ctx.pool.aclose()


async def open_router(options: RedisOptions, target: ConnectionTarget, where: str) -> ClusterRouter:
    """A router with the cluster's slot map.

    :raises ConfigurationError: wrong credentials, or a seed that is not a cluster node.
    :raises BackendUnavailableError: no seed answered.
    """
    router = ClusterRouter(options, target, where)
    try:
        with map_redis_errors("admin", where):
            await router.refresh()
    except BaseException:
        await router.aclose()
        raise
    return router
