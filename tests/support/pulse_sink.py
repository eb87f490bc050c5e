"""An emulation of a goa.design/pulse streaming sink, with a raw redis-py client, for tests of
groups shared by Go pulse sinks and streamsink consumers.

Written from pulse's source (``streaming/sink.go`` and ``rmap`` of the release loom-mcp runs,
v1.6.x): the same keys, scripts, pub/sub channels, schedule and rules, command for command where
it matters to the consumers it shares a group with:

- **NewSink**: ``SCRIPT LOAD`` the lease script; join the replicated maps ``stream:<stream>:sinks``
  and ``sink:<sink>:keepalive`` (``SUBSCRIBE map:<m>:updates``, then ``HGETALL
  map:<m>:content``); ``XGROUP CREATE <key> <sink> <start> MKSTREAM`` (``BUSYGROUP`` ignored);
  delete stale consumers; create its consumer: a ULID, ``XGROUP CREATECONSUMER``, appended to the
  consumers map under the sink name, keep-alive set to now in unix nanoseconds.
- **read loop**: ``ensureConsumer`` (a new consumer when its own keep-alive is older than twice
  the grace period), then ``XREADGROUP GROUP <sink> <consumer> COUNT <max polled> BLOCK <block>
  STREAMS <key> >``; each entry goes to the handler.
- **keep-alive**: a ticker of one ack grace period, ``Set(consumer, now ns)`` on the keep-alive
  map (``periodicKeepAlive``).
- **idle check**: a ticker of 500 ms (``periodicIdleMessageCheck``), the lease script on
  ``sink:<sink>:stalelease`` (``now + 495``, ``now``, ``495``); the winner runs
  ``XAUTOCLAIM <key> <sink> <own consumer> <grace ms> 0-0`` following the cursor to ``0-0``
  (claimed entries go to the handler), then deletes stale consumers.
- **stale consumers**: ``XINFO CONSUMERS``; a consumer with no entry in the local copy of the
  keep-alive map is deleted (``XGROUP DELCONSUMER``) at once; one whose keep-alive is older than
  twice the grace period is deleted, and its keep-alive and consumers-map entries too.
- **replicated maps**: writes are scripts that change the hash, bump ``=rev``, set ``=kind`` and
  publish ``set:``/``del:`` + ``struct.pack`` records; the local copy is the ``HGETALL`` read at
  join, then every published change whose revision is newer than the copy's.
- **Ack**: ``XACK <key> <sink> <id>``, one id per call, result ignored. **Close**: stops the
  loops and leaves the maps, and deletes neither the consumer nor its keep-alive.

Every ``XGROUP DELCONSUMER`` it issues is recorded (:attr:`PulseSink.deletions`), with the
number of pending entries Redis dropped with the consumer.
"""

from __future__ import annotations

import json
import os
import random
import struct
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import anyio
import attrs
import redis.asyncio as aioredis
import redis.exceptions as rex

__all__ = [
    "CHECK_IDLE_PERIOD",
    "Deletion",
    "PulseEvent",
    "PulseSink",
    "Replica",
    "forget_consumer",
    "ulid",
]

CHECK_IDLE_PERIOD = 0.5
"""pulse's checkIdlePeriod: the idle check runs every 500 ms, under a 495 ms lease."""
LEASE_MS = int(CHECK_IDLE_PERIOD * 1000) - 5

# pulse's acquireLeaseScript: take the lease when absent or expired.
_LEASE = """
local key = KEYS[1]
local new_value = ARGV[1]
local current_time = ARGV[2]
local current_value = redis.call("GET", key)
if current_value == false or tonumber(current_value) < tonumber(current_time) then
    redis.call("SET", key, new_value, "PX", ARGV[3])
    return 1
end
return 0
"""

# pulse's rmap scripts (set, delete, append, remove), KEYS = hash, channel.
_MAP_SET = """
local v = redis.call("HGET", KEYS[1], ARGV[1])
redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
local rev = tostring(redis.call("HINCRBY", KEYS[1], "=rev", 1))
redis.call("HSET", KEYS[1], "=kind", "set")
local msg = struct.pack("ic0ic0ic0", string.len(ARGV[1]), ARGV[1], string.len(ARGV[2]), ARGV[2],
  string.len(rev), rev)
redis.call("PUBLISH", KEYS[2], "set:" .. msg)
return v
"""
_MAP_DELETE = """
local v = redis.call("HGET", KEYS[1], ARGV[1])
if not v then return nil end
redis.call("HDEL", KEYS[1], ARGV[1])
local rev = tostring(redis.call("HINCRBY", KEYS[1], "=rev", 1))
redis.call("HSET", KEYS[1], "=kind", "del")
local msg = struct.pack("ic0ic0", string.len(ARGV[1]), ARGV[1], string.len(rev), rev)
redis.call("PUBLISH", KEYS[2], "del:" .. msg)
return v
"""
_MAP_APPEND = """
local key = ARGV[1]
local v = redis.call("HGET", KEYS[1], key)
local values = {}
if v then
  local ok, decoded = pcall(cjson.decode, v)
  if ok and type(decoded) == "table" then
    values = decoded
  else
    for s in string.gmatch(v, "[^,]+") do table.insert(values, s) end
  end
end
for i = 2, #ARGV do table.insert(values, ARGV[i]) end
local encoded = cjson.encode(values)
redis.call("HSET", KEYS[1], key, encoded)
local rev = tostring(redis.call("HINCRBY", KEYS[1], "=rev", 1))
redis.call("HSET", KEYS[1], "=kind", "set")
local msg = struct.pack("ic0ic0ic0", string.len(key), key, string.len(encoded), encoded,
  string.len(rev), rev)
redis.call("PUBLISH", KEYS[2], "set:" .. msg)
return encoded
"""
_MAP_REMOVE = """
local key = ARGV[1]
local v = redis.call("HGET", KEYS[1], key)
if not v or #ARGV == 1 then return {v, 0} end
local values = {}
local ok, decoded = pcall(cjson.decode, v)
if ok and type(decoded) == "table" then
  values = decoded
else
  for s in string.gmatch(v, "[^,]+") do table.insert(values, s) end
end
local remove = {}
for i = 2, #ARGV do remove[ARGV[i]] = true end
local removed = 0
local remaining = {}
for _, item in ipairs(values) do
  if remove[item] then removed = 1 else table.insert(remaining, item) end
end
if removed == 0 then return {v, 0} end
if #remaining == 0 then
  redis.call("HDEL", KEYS[1], key)
  local rev = tostring(redis.call("HINCRBY", KEYS[1], "=rev", 1))
  redis.call("HSET", KEYS[1], "=kind", "del")
  local msg = struct.pack("ic0ic0", string.len(key), key, string.len(rev), rev)
  redis.call("PUBLISH", KEYS[2], "del:" .. msg)
  return {"", 1}
end
local encoded = cjson.encode(remaining)
redis.call("HSET", KEYS[1], key, encoded)
local rev = tostring(redis.call("HINCRBY", KEYS[1], "=rev", 1))
redis.call("HSET", KEYS[1], "=kind", "set")
local msg = struct.pack("ic0ic0ic0", string.len(key), key, string.len(encoded), encoded,
  string.len(rev), rev)
redis.call("PUBLISH", KEYS[2], "set:" .. msg)
return {encoded, 1}
"""

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid() -> str:
    """A ULID (26 characters of Crockford base32: 48 bits of unix ms, 80 random bits), as pulse
    names its consumers (``ulid.Make()``)."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _unpack(data: bytes) -> tuple[str, bytes]:
    """One ``struct.pack("ic0")`` record (4-byte little-endian length, then the bytes)."""
    if len(data) < 4:
        raise ValueError("buffer too short for length")
    (length,) = struct.unpack("<i", data[:4])
    if len(data) < 4 + length:
        raise ValueError("buffer too short for string")
    return data[4 : 4 + length].decode(), data[4 + length :]


def forget_consumer(client: Any, stream: str, group: str, consumer: str) -> None:
    """What an operator does after ``XGROUP DELCONSUMER`` of a dead streamsink consumer that
    took part in pulse's keep-alive: remove its keep-alive, consumers-map and registry entries
    (``client``: a synchronous redis-py client)."""
    keepalive, consumers = f"sink:{group}:keepalive", f"stream:{stream}:sinks"
    client.eval(_MAP_DELETE, 2, f"map:{keepalive}:content", f"map:{keepalive}:updates", consumer)
    client.eval(
        _MAP_REMOVE, 2, f"map:{consumers}:content", f"map:{consumers}:updates", group, consumer
    )
    client.hdel(f"streamsink:sink:{group}:consumers", consumer)
    for name in (keepalive, consumers):  # nothing but pulse's =rev and =kind left: drop it
        if set(client.hkeys(f"map:{name}:content")) <= {b"=rev", b"=kind"}:
            client.delete(f"map:{name}:content")


class Replica:
    """A pulse replicated map as one process joins it: a local copy of ``map:<name>:content``
    kept up to date from ``map:<name>:updates``, and pulse's writes."""

    def __init__(self, client: aioredis.Redis, name: str) -> None:
        self.name = name
        self.hash = f"map:{name}:content"
        self.channel = f"map:{name}:updates"
        self._client = client
        self._pubsub: Any = None
        self.content: dict[str, str] = {}
        self.rev = 0
        self.invalid_messages = 0
        self.applied = 0

    async def join(self) -> None:
        """Subscribe to the channel, then read the hash (pulse's ``Join``)."""
        self._pubsub = self._client.pubsub()
        await self._pubsub.subscribe(self.channel)
        await self._pubsub.get_message(timeout=5)  # the subscription's confirmation
        content = {_text(k): _text(v) for k, v in (await self._client.hgetall(self.hash)).items()}
        content.pop("=kind", None)
        rev = content.pop("=rev", "")
        self.rev = int(rev) if rev.isdigit() else 0
        self.content = content

    async def follow(self) -> None:
        """Apply published changes, forever (pulse's ``run``)."""
        while True:
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is None or message.get("type") != "message":
                continue
            try:
                self._apply(message["data"])
            except ValueError:
                self.invalid_messages += 1

    def _apply(self, payload: bytes) -> None:
        op, sep, data = payload.partition(b":")
        if not sep:
            raise ValueError("invalid payload")
        if op in (b"reset", b"destroy"):
            rev = int(data)
            if rev > self.rev:
                self.rev, self.content = rev, {}
            return
        key, rest = _unpack(data)
        if key in ("=rev", "=kind"):
            return
        value: str | None = None
        if op == b"set":
            value, rest = _unpack(rest)
        elif op != b"del":
            raise ValueError("invalid payload")
        rev_text, _ = _unpack(rest)
        rev = int(rev_text)
        if rev <= self.rev:
            return
        self.rev = rev
        self.applied += 1
        if value is None:
            self.content.pop(key, None)
        else:
            self.content[key] = value

    async def leave(self) -> None:
        if self._pubsub is not None:
            await self._pubsub.unsubscribe(self.channel)
            await self._pubsub.aclose()
            self._pubsub = None

    async def _script(self, text: str, *args: Any) -> Any:
        return await self._client.eval(text, 2, self.hash, self.channel, *args)

    async def set(self, key: str, value: str) -> None:
        await self._script(_MAP_SET, key, value)

    async def delete(self, key: str) -> None:
        await self._script(_MAP_DELETE, key)

    async def append_values(self, key: str, *items: str) -> None:
        await self._script(_MAP_APPEND, key, *items)

    async def remove_values(self, key: str, *items: str) -> None:
        await self._script(_MAP_REMOVE, key, *items)

    def values(self, key: str) -> list[str]:
        raw = self.content.get(key)
        if raw is None:
            return []
        try:
            decoded = json.loads(raw)
        except ValueError:
            return raw.split(",")
        return [str(v) for v in decoded] if isinstance(decoded, list) else raw.split(",")


@attrs.frozen
class PulseEvent:
    """An entry as the sink hands it to its handler."""

    entry_id: str
    name: str | None
    payload: bytes | None
    claimed: bool  # from an idle check (XAUTOCLAIM), not a read
    consumer: str  # the sink's consumer that got it


@attrs.frozen
class Deletion:
    """One ``XGROUP DELCONSUMER`` the sink issued."""

    consumer: str
    reason: str  # "no keep-alive" or "stale keep-alive"
    dropped: int  # pending entries Redis dropped with it
    at: float  # time.monotonic()


class _Ticker:
    """Go's ``time.NewTicker``: ticks at fixed multiples of ``period`` from its creation, not
    ``period`` after the previous tick's work; ticks missed while the work ran are dropped."""

    def __init__(self, period: float) -> None:
        self._period = period
        self._next = anyio.current_time() + period

    async def tick(self) -> None:
        await anyio.sleep_until(self._next)
        now = anyio.current_time()
        missed = max(0, int((now - self._next) // self._period))
        self._next += (missed + 1) * self._period


Handler = Callable[["PulseSink", PulseEvent], Awaitable[None] | None]


class PulseSink:
    """One pulse sink instance on one stream; ``async with`` runs it (NewSink ... Close).

    ``handler`` gets every entry read or claimed (default: ack it at once). ``grace`` is the
    sink's AckGracePeriod in seconds, ``block`` its BlockDuration.
    """

    def __init__(
        self,
        url: str,
        stream: str,
        name: str = "loom_mcp_subscriber",
        *,
        grace: float = 20.0,
        block: float = 0.05,
        max_polled: int = 1000,
        start: str = "$",
        handler: Handler | None = None,
        key_prefix: str = "pulse:stream:",
    ) -> None:
        self.url = url
        self.stream = stream
        self.name = name
        self.key = key_prefix + stream
        self.grace = grace
        self.block = block
        self.max_polled = max_polled
        self.start = start
        self.handler = handler
        self.consumer = ""
        self.consumers: list[str] = []  # every consumer it created, in order
        self.deletions: list[Deletion] = []
        self.events: list[PulseEvent] = []
        self.sweeps = 0  # idle checks whose lease it won (claims + stale-consumer deletion)
        self._last_keepalive = 0
        self._stack: AsyncExitStack | None = None
        self._lease_sha = ""

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> PulseSink:
        stack = AsyncExitStack()
        try:
            self._client = aioredis.Redis.from_url(self.url, protocol=2)
            stack.push_async_callback(self._client.aclose)
            # The blocking read has a connection of its own, as go-redis takes one per call.
            self._reader = aioredis.Redis.from_url(self.url, protocol=2)
            stack.push_async_callback(self._reader.aclose)
            self._lease_sha = _text(await self._client.script_load(_LEASE))
            self.consumers_map = Replica(self._client, f"stream:{self.stream}:sinks")
            await self.consumers_map.join()
            stack.push_async_callback(self.consumers_map.leave)
            self.keepalives = Replica(self._client, f"sink:{self.name}:keepalive")
            await self.keepalives.join()
            stack.push_async_callback(self.keepalives.leave)
            try:
                await self._client.xgroup_create(self.key, self.name, self.start, mkstream=True)
            except rex.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            group = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(group.cancel_scope.cancel)  # runs first on close: Close stops loops
            group.start_soon(self.consumers_map.follow)
            group.start_soon(self.keepalives.follow)
            await self._delete_stale_consumers()
            await self._new_consumer()
            group.start_soon(self._read)
            group.start_soon(self._periodic_keepalive)
            group.start_soon(self._periodic_idle_check)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close: the loops stop and the maps are left; the consumer and its keep-alive stay."""
        stack, self._stack = self._stack, None
        if stack is not None:
            # Not under a shielded scope: the stack exits the sink's task group, whose cancel
            # scope must be the current one when it does.
            await stack.aclose()

    async def ack(self, entry_id: str) -> None:
        """``XACK <key> <sink> <id>``, result ignored."""
        await self._client.xack(self.key, self.name, entry_id)

    # -- consumers ------------------------------------------------------------------------------

    async def _new_consumer(self) -> None:
        consumer = ulid()
        await self._client.xgroup_createconsumer(self.key, self.name, consumer)
        try:
            await self.consumers_map.append_values(self.name, consumer)
        except rex.RedisError:
            await self._client.xgroup_delconsumer(self.key, self.name, consumer)
            raise
        now = time.time_ns()
        try:
            await self.keepalives.set(consumer, str(now))
        except rex.RedisError:
            await self._client.xgroup_delconsumer(self.key, self.name, consumer)
            raise
        self._last_keepalive = now
        self.consumer = consumer
        self.consumers.append(consumer)

    async def _delete(self, consumer: str, reason: str) -> None:
        dropped = int(await self._client.xgroup_delconsumer(self.key, self.name, consumer))
        self.deletions.append(Deletion(consumer, reason, dropped, time.monotonic()))

    async def _delete_stale_consumers(self) -> None:
        """pulse's deleteStreamStaleConsumers, with the local copy of the keep-alive map."""
        infos = await self._client.xinfo_consumers(self.key, self.name)
        keepalives = dict(self.keepalives.content)
        stale_after = 2 * self.grace * 1e9
        for info in infos:
            name = _text(info["name"])
            stamp = keepalives.get(name)
            if stamp is None:
                await self._delete(name, "no keep-alive")
                continue
            try:
                value = int(stamp)
            except ValueError:
                continue
            if time.time_ns() - value > stale_after:
                await self._delete(name, "stale keep-alive")
                await self.keepalives.delete(name)
                await self.consumers_map.remove_values(self.name, name)

    # -- loops ----------------------------------------------------------------------------------

    async def _deliver(self, entries: Any, *, claimed: bool) -> None:
        for raw_id, fields in entries or ():
            if fields is None:
                continue
            name, payload = fields.get(b"n"), fields.get(b"p")
            event = PulseEvent(
                _text(raw_id),
                None if name is None else _text(name),
                payload,
                claimed,
                self.consumer,
            )
            self.events.append(event)
            if self.handler is None:
                await self.ack(event.entry_id)
                continue
            result = self.handler(self, event)
            if result is not None:
                await result

    async def _read(self) -> None:
        block_ms = max(1, int(self.block * 1000))
        while True:
            if time.time_ns() - self._last_keepalive > 2 * self.grace * 1e9:  # ensureConsumer
                try:
                    await self._new_consumer()
                except rex.RedisError:
                    await anyio.sleep(random.uniform(0, self.block))
                    continue
            try:
                reply = await self._reader.xreadgroup(
                    self.name, self.consumer, {self.key: ">"}, count=self.max_polled, block=block_ms
                )
            except rex.ResponseError as exc:
                if "NOGROUP" in str(exc):
                    await anyio.sleep(0.01)  # pulse loops at once; a pause keeps the box usable
                    continue
                await anyio.sleep(random.uniform(0, self.block))
                continue
            for _stream, entries in reply or ():
                await self._deliver(entries, claimed=False)

    async def _periodic_keepalive(self) -> None:
        ticker = _Ticker(self.grace)
        while True:
            await ticker.tick()
            now = time.time_ns()
            try:
                await self.keepalives.set(self.consumer, str(now))
            except rex.RedisError:
                continue
            self._last_keepalive = now

    async def _periodic_idle_check(self) -> None:
        ticker = _Ticker(CHECK_IDLE_PERIOD)
        while True:
            await ticker.tick()
            now = time.time_ns() // 1_000_000
            try:
                won = await self._client.evalsha(
                    self._lease_sha, 1, f"sink:{self.name}:stalelease", now + LEASE_MS, now,
                    LEASE_MS,
                )  # fmt: skip
            except rex.RedisError:
                continue
            if won != 1:
                continue
            try:
                await self._claim_idle()
                await self._delete_stale_consumers()
            except rex.RedisError:
                pass
            self.sweeps += 1

    async def _claim_idle(self) -> None:
        start = "0-0"
        grace_ms = int(self.grace * 1000)
        while True:
            reply = await self._client.xautoclaim(
                self.key, self.name, self.consumer, grace_ms, start_id=start
            )
            start = _text(reply[0])
            entries = [entry for entry in reply[1] if entry is not None]
            await self._deliver(entries, claimed=True)
            if start == "0-0":
                return
