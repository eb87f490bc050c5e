"""Shared reads on Redis (the SPI's :class:`~streamsink.backend.SharedReads`): one
``XREAD COUNT c BLOCK ms STREAMS k1 k2 … id1 id2 …`` per lane serves every fan-out reader of the
process, on a few read connections (``shared_read_connections``), each reading up to
``shared_read_streams`` streams before the next lane is used.

Positions and gap reports are those of :class:`~._reader.RedisStreamReader`: a cursor is checked
(:data:`~._positions.CHECK_STREAM` pipelined before a non-blocking ``XREAD``) on its first read,
after a full batch, and when it last caught up more than ``CHECK_AFTER`` ago. Several cursors on
one key are read through the earliest (Redis would answer a key given twice twice, and replies are
matched by key), each taking the entries after its own id.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, final

import attrs
import redis.exceptions as rex

from streamsink import BackendClosedError, ConfigurationError
from streamsink.backend import (
    RecordBatch,
    SharedCursor,
    StartPosition,
    StreamBatch,
    StreamDestroyedError,
)

from . import _wire as wire
from ._consumer import CHECK_AFTER
from ._errors import map_redis_errors
from ._handle import Context
from ._positions import CHECK_STREAM, ReaderPosition, Script, id_key, info_field
from ._shared_lane import NOT_READ, LaneConnection

__all__ = ["RedisCursor", "RedisSharedReads"]

_CHECK_STREAM = Script(CHECK_STREAM)
_NOTHING: tuple[Any, ...] = ()  # the records of a batch that brought nothing


@final
@attrs.frozen(slots=True)
class RedisCursor:
    """A reader's place in one stream: the id it stands after, its position (entries of the stream
    behind it; None while not known), whether it resumed ``after(id)`` and has not been checked
    yet, when it last caught up (monotonic; -inf: check the next read), and the stream's destroy
    count when it was made."""

    stream_id: str
    after: str
    key: str
    pos: int | None
    resume: bool
    caught_up_at: float = attrs.field(eq=False)
    epoch: int


@final
class RedisSharedReads:
    """Lanes of shared reads on one :class:`~._backend.RedisBackend`."""

    def __init__(
        self,
        ctx: Context,
        key_of: Callable[[str], str],
        on_close: Callable[[RedisSharedReads], None],
    ) -> None:
        self._ctx = ctx
        self._key_of = key_of
        self._on_close = on_close
        options = ctx.options
        self._per_lane = options.shared_read_streams
        self._lanes = [
            LaneConnection(ctx.pool, ctx.commands, poll=ctx.poll, grace=ctx.grace)
            for _ in range(options.shared_read_connections)
        ]
        self._epochs: dict[str, int] = {}  # key -> destroys through the backend
        #: per lane, key -> when its last read found the key at its end (monotonic), for the
        #: cursors that read gave back as they were (the keys of the last read only)
        self._caught_up: list[dict[str, float]] = [{} for _ in self._lanes]
        self._closed = False

    @property
    def lanes(self) -> int:
        return len(self._lanes)

    def lane(self, stream_id: str, loads: Sequence[int]) -> int:
        """The first lane reading fewer than ``shared_read_streams`` streams, else the least
        loaded: one connection until it is full, then the next."""
        for index, load in enumerate(loads):
            if load < self._per_lane:
                return index
        return min(range(len(loads)), key=loads.__getitem__)

    def _check(self) -> None:
        if self._closed:
            raise BackendClosedError(f"shared reads of {self._ctx.where} are closed")

    async def resolve(self, stream_id: str, start: StartPosition) -> RedisCursor:
        """As :meth:`RedisBackend.open_reader` resolves a start (``newest``: the stream's last
        generated id, read on the command connection)."""
        self._check()
        key = self._key_of(stream_id)
        after = wire.start_id(start)
        pos: int | None = None
        if after == "$":
            with map_redis_errors("read", self._ctx.where):
                (info,) = await self._ctx.commands.run([["XINFO", "STREAM", key]])
            if isinstance(info, rex.ResponseError):
                if "no such key" not in str(info).lower():
                    with map_redis_errors("read", self._ctx.where):
                        raise info
                after, pos = "0-0", 0
            else:
                after, pos = wire.last_generated_id(info), info_field(info, "entries-added", 0)
        return RedisCursor(
            stream_id, after, key, pos, start.kind == "after", -math.inf, self._epochs.get(key, 0)
        )

    async def read(
        self, cursors: Sequence[SharedCursor], count: int, block: float, *, lane: int | None
    ) -> list[StreamBatch]:
        """Check the cursors that need it and read all in one non-blocking round trip; if that
        found nothing, one blocking ``XREAD`` of all (on the lane's connection; ``lane=None``:
        the command connection, never blocking)."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigurationError(f"count must be a positive integer, got {count!r}")
        self._check()
        n = min(count, self._ctx.options.count)
        block_ms = _block_ms(block, self._ctx.options.block_ms) if lane is not None else 0
        given: list[RedisCursor] = []
        for cursor in cursors:
            if type(cursor) is not RedisCursor:
                raise ConfigurationError(f"not a cursor of the redis backend: {cursor!r}")
            given.append(cursor)
        epochs = self._epochs
        if epochs and any(c.epoch != epochs.get(c.key, 0) for c in given):
            return [self._unmoved_or_destroyed(c) for c in given]
        # The earliest cursor of each key is the one read.
        first: dict[str, RedisCursor] = {}
        for c in given:
            known = first.setdefault(c.key, c)
            if known is not c and id_key(c.after) < id_key(known.after):
                first[c.key] = c
        keys = list(first)
        now = time.monotonic()
        if lane is None:
            due = {c.key for c in given if now - c.caught_up_at > CHECK_AFTER}
        else:
            # A lane's cursors that a read left where they were (nothing new) are not made
            # anew: when their key was last read to its end is kept here, per key.
            caught = self._caught_up[lane]
            due = {
                c.key
                for c in given
                if now - max(c.caught_up_at, caught.get(c.key, -math.inf)) > CHECK_AFTER
                or c.caught_up_at == -math.inf
            }

        def xread(wait_ms: int) -> list[Any]:
            args: list[Any] = ["XREAD", "COUNT", n]
            if wait_ms > 0:
                args += ["BLOCK", wait_ms]
            return [*args, "STREAMS", *keys, *(first[k].after for k in keys)]

        connection = None if lane is None else self._lanes[lane]
        if connection is not None:
            connection.begin()
        try:
            return await self._read(given, first, keys, n, due, block_ms, lane, xread)
        finally:
            if connection is not None:
                connection.end()

    async def _read(
        self,
        given: list[RedisCursor],
        first: dict[str, RedisCursor],
        keys: list[str],
        n: int,
        due: set[str],
        block_ms: int,
        lane: int | None,
        xread: Callable[[int], list[Any]],
    ) -> list[StreamBatch]:
        connection = None if lane is None else self._lanes[lane]
        with map_redis_errors("read", self._ctx.where):
            if due:
                checked = [k for k in keys if k in due]
                # The counts only where something may have been trimmed ahead of the key's
                # earliest cursor, or where a cursor's position is not known yet (as
                # RedisStreamReader asks for them).
                unknown = {c.key for c in given if c.pos is None}
                commands = [
                    _CHECK_STREAM.eval((k,), [first[k].after, "1" if k in unknown else "0"])
                    for k in checked
                ]
                replies = await self._run([*commands, xread(0)], connection)
                if replies is None:  # interrupted before it was sent
                    return [StreamBatch([], c) for c in given]
                counts = dict(zip(checked, replies[:-1], strict=True))
                batches, given = self._batches(given, n, replies[-1], counts, lane=lane)
                if block_ms == 0 or any(
                    b.records or type(b.records) is RecordBatch for b in batches
                ):
                    return batches
            elif connection is None:
                replies = await self._run([xread(0)], None)
                assert replies is not None
                return self._batches(given, n, replies[0], {})[0]
            assert connection is not None  # a read of its own never blocks: it returned above
            reply = await connection.read(xread, block_ms)
        self._check()
        if reply is NOT_READ:  # interrupted before the server saw it: nothing learned
            return [StreamBatch([], c) for c in given]
        return self._batches(given, n, reply, {}, lane=lane)[0]

    async def _run(
        self, commands: list[list[Any]], connection: LaneConnection | None
    ) -> list[Any] | None:
        if connection is None:
            replies: list[Any] | None = await self._ctx.commands.run(commands)
        else:
            replies = await connection.run(commands)
        if replies is not None:
            for reply in replies:
                if isinstance(reply, rex.ResponseError):
                    raise reply
        return replies

    def _unmoved_or_destroyed(self, cursor: RedisCursor) -> StreamBatch:
        if cursor.epoch == self._epochs.get(cursor.key, 0):
            return StreamBatch([], cursor)
        error = StreamDestroyedError(f"stream {cursor.stream_id!r} was destroyed")
        return StreamBatch([], cursor, error)

    def _batches(
        self,
        given: Sequence[RedisCursor],
        n: int,
        reply: Any,
        counts: Mapping[str, Any],
        *,
        lane: int | None = None,
    ) -> tuple[list[StreamBatch], list[RedisCursor]]:
        """Each cursor's batch from one XREAD reply (and the CHECK_STREAM replies of the keys
        that were checked), and the cursors moved; ``lane``: the lane whose read it was (of
        every cursor of its keys), whose unmoved cursors are given back as they were."""
        by_key = _entries_by_key(reply)
        now = time.monotonic()
        on_lane = lane is not None
        if lane is not None:
            # A full batch is not the end of its key either, but its cursor moves (-inf).
            self._caught_up[lane] = dict.fromkeys([c.key for c in given], now)
        out: list[StreamBatch] = []
        moved_all: list[RedisCursor] = []
        for cursor in given:
            entries = by_key.get(cursor.key, _NOTHING)
            if on_lane and not entries and cursor.key not in counts:
                # Nothing new, nothing checked: the cursor stays as it is (most of a lane's
                # cursors, most reads: this keeps a read's cost to the streams that moved).
                out.append(StreamBatch(_NOTHING, cursor))
                moved_all.append(cursor)
                continue
            caught_up = len(entries) < n
            mine = entries
            if entries and id_key(entries[0][0]) <= id_key(cursor.after):
                floor = id_key(cursor.after)
                mine = [e for e in entries if id_key(e[0]) > floor]
            ids = [entry_id for entry_id, _ in mine]
            position = ReaderPosition(cursor.after, cursor.pos, "after" if cursor.resume else "at")
            gap = None
            check = counts.get(cursor.key)
            if check is not None and check[0] is not None:
                added, length, head = _counts_at_read(check, entries)
                gap = position.checked(
                    cursor.stream_id, ids, added, length, head, caught_up=caught_up
                )
            else:  # not checked, or nothing trimmed ahead of the cursor
                position.advanced(ids)
            records = wire.records(mine)
            moved = RedisCursor(
                cursor.stream_id,
                position.cursor,
                cursor.key,
                position.pos,
                position.resume,
                now if caught_up else -math.inf,
                cursor.epoch,
            )
            out.append(
                StreamBatch(RecordBatch(records, gap) if gap is not None else records, moved)
            )
            moved_all.append(moved)
        return out, moved_all

    async def interrupt(self, lane: int) -> None:
        await self._lanes[lane].interrupt()

    async def destroyed(self, key: str) -> None:
        """The backend destroyed ``key``: cursors made before read it as destroyed, now."""
        self._epochs[key] = self._epochs.get(key, 0) + 1
        for lane in self._lanes:
            await lane.interrupt()

    async def aclose(self) -> None:
        """Close the lane connections (reads in flight raise BackendClosedError). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._on_close(self)
        for lane in self._lanes:
            await lane.aclose()


def _block_ms(block: float, most: int) -> int:
    if not block > 0:  # also NaN
        return 0
    if math.isinf(block):
        return most
    return max(1, min(math.ceil(block * 1000), most))


def _counts_at_read(
    check: Sequence[Any], entries: Sequence[wire.RawEntry]
) -> tuple[int, int, str | None]:
    """A :data:`~._positions.CHECK_STREAM` reply's counts (entries added, length, first kept
    id), brought up to the read it preceded: ``entries`` (the key's, as read) added in between
    are counted too. The script and the read are pipelined, not atomic: in a long
    pipeline Redis runs other clients' commands between the two, and an entry added there is
    read but not counted (as if, once read, one entry more had been lost to trimming)."""
    added, length, head = int(check[0] or 0), int(check[1] or 0), check[2]
    first = wire.text(head) if head else None
    late = 0
    if len(check) > 3 and entries:
        last = id_key(wire.text(check[3]))
        for entry_id, _ in reversed(entries):
            if id_key(entry_id) <= last:
                break
            late += 1
        if late:
            added += late
            length += late
            if first is None:  # the stream was empty (or missing) when checked
                first = entries[len(entries) - late][0]
    return added, length, first


def _entries_by_key(raw: Any) -> dict[str, list[wire.RawEntry]]:
    """``{key: entries}`` of a multi-key XREAD reply (nil, RESP2 pairs or a RESP3 map)."""
    if not raw:
        return {}
    pairs = raw.items() if isinstance(raw, Mapping) else ((pair[0], pair[1]) for pair in raw)
    return {wire.text(key): wire.entries_of_read([(key, entries)]) for key, entries in pairs}
