"""The operations extension of the Redis backend (:class:`streamsink.backend.OperableBackend`):
``SCAN ... TYPE stream`` under the key prefix, ``XINFO GROUPS`` / ``CONSUMERS``, extended
``XPENDING``, exact ``XTRIM``, and a script that deletes a consumer only when it holds nothing.

A mixin of :class:`~streamsink_redis.RedisBackend`, kept out of the backend's module, which holds
the core's SPI."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import redis.exceptions as rex

from streamsink import (
    BackendClosedError,
    ConfigurationError,
    validate_name,
    validate_stream_id,
)
from streamsink.backend import ConsumerInfo, GroupInfo, PendingInfo, TrimBound
from streamsink.backend.redis_ids import parse_entry_id

from . import _wire as wire
from ._connection import execute
from ._errors import map_redis_errors
from ._group_scripts import NACK_IDLE_MS
from ._handle import Context

if TYPE_CHECKING:
    from ._cluster import ClusterRouter
from ._operate_scripts import DELETE_IDLE_CONSUMER, DELETED

__all__ = ["RedisOperations"]

_SCAN_COUNT = 1000
_SEQ_MAX = 2**64 - 1
_GLOB = str.maketrans({c: "\\" + c for c in "*?[]\\"})


class RedisOperations:
    """Listing and tidying streams on Redis, for operators; see :class:`OperableBackend`."""

    _ctx: Context
    _closed: bool
    _router: ClusterRouter | None

    def _key(self, stream_id: str) -> str:
        if self._closed:
            raise BackendClosedError(f"redis backend {self._ctx.where} is closed")
        return self._ctx.options.key_prefix + validate_stream_id(stream_id)

    async def _call(self, key: str, *args: Any) -> Any:
        """``args`` on the server serving ``key`` (on Redis Cluster, the master of its slot)."""
        with map_redis_errors("admin", self._ctx.where):
            return await execute(self._ctx.on(key).client, *args)

    def _scanned(self) -> list[Context]:
        """Where the stream keys are: the server, or every master of a cluster."""
        return [self._ctx] if self._router is None else self._router.masters()

    async def list_streams(self) -> list[str]:
        """``SCAN`` for stream keys under the key prefix (other types skipped: pulse keeps its
        maps elsewhere, but an application may share the prefix), as stream ids, sorted. Keys
        that are no valid stream id (or not UTF-8) cannot be used through the backend and are
        left out."""
        if self._closed:
            raise BackendClosedError(f"redis backend {self._ctx.where} is closed")
        prefix = self._ctx.options.key_prefix
        pattern = prefix.translate(_GLOB) + "*"
        found: set[str] = set()
        for node in self._scanned():
            cursor: Any = 0
            while True:
                with map_redis_errors("admin", self._ctx.where):
                    cursor, keys = await execute(
                        node.client,
                        "SCAN", cursor, "MATCH", pattern, "COUNT", _SCAN_COUNT, "TYPE", "stream",
                    )  # fmt: skip
                for raw in keys:
                    stream_id = _stream_id(raw, prefix)
                    if stream_id is not None:
                        found.add(stream_id)
                if int(cursor) == 0:
                    break
        return sorted(found)

    async def list_groups(self, stream_id: str) -> list[GroupInfo] | None:
        """``XINFO GROUPS``, then ``XINFO CONSUMERS`` of every group in one pipelined round trip
        for the groups' idle times. ``lag`` is Redis 7's (None when Redis cannot tell)."""
        key = self._key(stream_id)
        try:
            raw_groups = await self._call(key, "XINFO", "GROUPS", key)
        except Exception as exc:
            if _missing(exc):
                return None
            raise
        groups = [_fields(raw) for raw in raw_groups]
        idles: list[Any] = []
        if groups:
            with map_redis_errors("admin", self._ctx.where):
                pipe = self._ctx.on(key).client.pipeline(transaction=False)
                for fields in groups:
                    pipe.execute_command("XINFO", "CONSUMERS", key, fields["name"])
                idles = await pipe.execute(raise_on_error=False)
        infos = []
        for fields, consumers in zip(groups, idles, strict=True):
            seen = [] if isinstance(consumers, Exception) else [_fields(c) for c in consumers]
            last = _id_or_none(fields.get("last-delivered-id"))
            lag = fields.get("lag")
            infos.append(
                GroupInfo(
                    name=wire.text(fields["name"]),
                    consumers=int(fields.get("consumers", 0)),
                    pending=int(fields.get("pending", 0)),
                    last_delivered_id=last,
                    lag=None if lag is None else int(lag),
                    idle=min(int(c["idle"]) for c in seen) / 1000 if seen else None,
                )
            )
        return sorted(infos, key=lambda info: info.name)

    async def list_consumers(self, stream_id: str, group: str) -> list[ConsumerInfo] | None:
        """``XINFO CONSUMERS``; ``idle`` is Redis's (since the consumer's last read or claim)."""
        key = self._key(stream_id)
        wire.check_name("group", group)
        try:
            rows = await self._call(key, "XINFO", "CONSUMERS", key, group)
        except Exception as exc:
            if _missing(exc):
                return None
            raise
        infos = [
            ConsumerInfo(
                name=wire.text(fields["name"]),
                pending=int(fields.get("pending", 0)),
                idle=int(fields.get("idle", 0)) / 1000,
            )
            for fields in map(_fields, rows)
        ]
        return sorted(infos, key=lambda info: info.name)

    async def list_pending(
        self,
        stream_id: str,
        group: str,
        *,
        after: str | None = None,
        count: int = 100,
        consumer: str | None = None,
    ) -> list[PendingInfo] | None:
        """Extended ``XPENDING key group (after + count [consumer]``, which resets nothing.

        :raises ConfigurationError: a bad name, ``count`` below 1, ``after`` not ``<ms>-<seq>``.
        """
        key = self._key(stream_id)
        wire.check_name("group", group)
        if consumer is not None:
            wire.check_name("consumer", consumer)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigurationError(f"count={count!r} is invalid: expected an integer >= 1")
        start = "-"
        if after is not None:
            ms, seq = parse_entry_id(after)
            start = f"({ms}-{seq}"
        args: list[Any] = ["XPENDING", key, group, start, "+", count]
        if consumer is not None:
            args.append(consumer)
        try:
            rows = await self._call(key, *args)
        except Exception as exc:
            if _missing(exc):
                return None
            raise
        return [
            PendingInfo(
                entry_id=wire.text(entry_id),
                consumer=wire.text(owner),
                # a nack sets a ten-year idle time: due now, as the SPI spells it
                idle=math.inf if int(idle) >= NACK_IDLE_MS else int(idle) / 1000,
                deliveries=int(deliveries),
            )
            for entry_id, owner, idle, deliveries in rows
        ]

    async def delete_idle_consumer(
        self, stream_id: str, group: str, consumer: str, *, min_idle: float
    ) -> bool:
        """One script: ``XGROUP DELCONSUMER`` only when ``XPENDING`` finds nothing it holds and
        ``XINFO CONSUMERS`` shows it idle for ``min_idle`` seconds at least.

        :raises ConfigurationError: a bad name or ``min_idle``.
        """
        key = self._key(stream_id)
        validate_name("group", group)
        validate_name("consumer", consumer)
        if isinstance(min_idle, bool) or not isinstance(min_idle, int | float) or not min_idle >= 0:
            raise ConfigurationError(f"min_idle={min_idle!r} is invalid: expected seconds >= 0")
        idle_ms = str(math.ceil(min_idle * 1000)) if math.isfinite(min_idle) else str(2**62)
        keys, args = (key,), (group, consumer, idle_ms)
        client = self._ctx.on(key).client
        with map_redis_errors("admin", self._ctx.where):
            try:
                outcome = await execute(client, *DELETE_IDLE_CONSUMER.evalsha(keys, args))
            except rex.NoScriptError:  # not cached (a restarted server): send the text
                outcome = await execute(client, *DELETE_IDLE_CONSUMER.eval(keys, args))
        return int(outcome) == DELETED

    async def trim_stream(self, stream_id: str, bound: TrimBound) -> int:
        """Exact ``XTRIM MAXLEN`` or ``XTRIM MINID`` (``through(id)`` is ``MINID`` of the id
        after it); 0 for a missing stream (XTRIM creates nothing).

        :raises ConfigurationError: an id in ``bound`` that is not ``<ms>-<seq>``.
        """
        key = self._key(stream_id)
        if bound.kind == "maxlen":
            args: list[Any] = ["XTRIM", key, "MAXLEN", bound.count]
        else:
            ms, seq = parse_entry_id(str(bound.entry_id))
            if bound.kind == "through":
                ms, seq = (ms, seq + 1) if seq < _SEQ_MAX else (ms + 1, 0)
            args = ["XTRIM", key, "MINID", f"{ms}-{seq}"]
        return int(await self._call(key, *args))


def _missing(exc: BaseException) -> bool:
    """Whether an ``XINFO`` / ``XPENDING`` error says the stream or group does not exist."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    text = str(cause).lower()
    return isinstance(cause, rex.ResponseError) and ("no such key" in text or "nogroup" in text)


def _stream_id(raw: Any, prefix: str) -> str | None:
    try:
        key = bytes(raw).decode() if isinstance(raw, bytes | bytearray) else str(raw)
        return validate_stream_id(key[len(prefix) :]) if key.startswith(prefix) else None
    except (UnicodeDecodeError, ConfigurationError):
        return None


def _fields(raw: Any) -> dict[str, Any]:
    """An ``XINFO`` row (RESP2 flat list or RESP3 map) by field name."""
    if isinstance(raw, Mapping):
        return {wire.text(k): v for k, v in raw.items()}
    flat = list(raw)
    return {wire.text(k): v for k, v in zip(flat[0::2], flat[1::2], strict=False)}


def _id_or_none(raw: Any) -> str | None:
    if raw is None:
        return None
    text = wire.text(raw)
    return None if text in ("0-0", "0") else text
