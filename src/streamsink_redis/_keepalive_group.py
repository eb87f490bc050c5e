"""The pulse keep-alives (:mod:`._keepalive`) of one group's consumers on one backend, written
together.

pulse keeps one keep-alive map per sink name (= group) for all its streams, and takes a consumer
for stale once its entry is older than twice the ack grace period; pulse writes its own every
grace period. Written one consumer at a time, every consumer ran a script of its own every grace
period (7 commands as ``INFO commandstats`` counts them) and its blocking reads were cut at its
own refresh, at its own phase: 1,000 idle consumers at pulse's default 20 s ran 350 commands/s
and 50 reads/s. The consumers of a group with one grace period on one backend now share one
schedule (:class:`KeepAliveGroup`): the first call of any of them that finds it due writes every
live member's entry, in one script per :data:`BATCH` consumers (two ``HMGET``, ``HSET`` of all
fields, one ``HINCRBY`` of ``=rev``, ``=kind``, then a ``PUBLISH`` per consumer: replicas apply
each message in order, as after as many ``Map.Set`` calls in a row; the messages are left out
while no replica follows the channel, ``PUBSUB NUMSUB``, since one joining later reads the
hash). One member's blocking read at a time (the *waker*'s) is cut to end at that moment
(:meth:`KeepAliveGroup.cut`); the others block as long as the core asks, and count as live
meanwhile. ``XINFO CONSUMERS`` (a check that the group still lists a consumer) runs only for
consumers that may hold entries: deleting one that holds nothing drops nothing.

The period stays pulse's (the grace period): the margin before pulse takes a consumer for stale
is a whole grace period, as for pulse's own consumers. Any member's call refreshes a due group,
and a consumer that may hold entries calls at least every claim interval (its reads block no
longer, to look for a deletion), so the only refresh that can come late is that of consumers
holding nothing, when the waker's read returned entries and its application then stopped
before its next read, while all the others wait in reads started earlier: pulse may then delete
such consumers, which drops nothing; the next refresh registers them again and reports the
deletion (``ConsumerDeletedError``, to ``on_error``) for those that had been given entries.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any, Final, final

import redis.exceptions as rex

from streamsink import StreamsinkError

from . import _rmap as rmap
from ._connection import execute
from ._errors import is_driver_error, map_redis_errors
from ._handle import Context
from ._keepalive import DEFAULT_GRACE, KeepAlive, keepalive_map, registry
from ._keepalive_scripts import REFRESH_MANY

__all__ = ["BATCH", "MIN_PERIOD", "RETRY_AFTER", "KeepAliveGroup", "KeepAliveGroups"]

_log = logging.getLogger("streamsink_redis")

MIN_PERIOD: Final = 0.01
"""Shortest refresh period, whatever grace period a caller passes (guards against a hot loop)."""

RETRY_AFTER: Final = 1.0
"""Longest wait (seconds) before a failed refresh is tried again (a quarter period if shorter)."""

BATCH: Final = 500
"""Most consumers refreshed by one script (Lua's ``unpack`` has a bounded stack)."""


def period_of(grace: float) -> float:
    """The refresh period for an ack grace period (pulse's default for anything but a positive
    finite number of seconds)."""
    if isinstance(grace, int | float) and math.isfinite(grace) and grace > 0:
        return max(float(grace), MIN_PERIOD)
    return DEFAULT_GRACE


@final
class KeepAliveGroup:
    """The keep-alives of one group's consumers that share a grace period, refreshed together.
    Made by :class:`KeepAliveGroups`; a :class:`~._keepalive.KeepAlive` is a member from its
    join to its leave."""

    __slots__ = ("_ctx", "_grace", "_group", "_members", "_on_empty", "_waker", "_written_at")

    def __init__(
        self,
        ctx: Context,
        group: str,
        grace: float,
        on_empty: Callable[[KeepAliveGroup], None],
    ) -> None:
        self._ctx = ctx
        self._group = group
        self._grace = grace
        self._on_empty = on_empty
        self._members: dict[KeepAlive, None] = {}  # in joining order
        # Made for a consumer that is joining (its keep-alive written just now).
        self._written_at = time.monotonic()
        # The member whose blocking read in progress ends when the refresh is due.
        self._waker: KeepAlive | None = None

    @property
    def grace(self) -> float:
        """The refresh period (seconds)."""
        return self._grace

    @property
    def members(self) -> int:
        """How many consumers it refreshes."""
        return len(self._members)

    def add(self, member: KeepAlive) -> None:
        self._members[member] = None

    def discard(self, member: KeepAlive) -> None:
        self.read_ended(member)
        if self._members.pop(member, 0) is None and not self._members:
            self._on_empty(self)

    def cut(self, member: KeepAlive, block_ms: int) -> int:
        """How long ``member``'s blocking read, about to start, may wait (``block_ms`` asked):
        cut to end when the refresh is due if no other member's read in progress does; the
        others wait as long as they ask (they count as live meanwhile)."""
        waker = self._waker
        if waker is not None and waker is not member and waker.reading:
            return block_ms
        self._waker = member
        return max(1, min(block_ms, math.ceil(self.remaining() * 1000)))

    def read_ended(self, member: KeepAlive) -> None:
        """``member``'s blocking read ended (the next read to start is cut in its place)."""
        if self._waker is member:
            self._waker = None

    def due(self) -> bool:
        """A grace period has passed since the last refresh (or attempt)."""
        return time.monotonic() - self._written_at >= self._grace

    def remaining(self) -> float:
        """Seconds until :meth:`due` (0 or less: due now)."""
        return self._written_at + self._grace - time.monotonic()

    async def refresh_if_due(self) -> None:
        """:meth:`refresh` if it is due; never raises a backend error (a failed refresh is
        logged, and tried again a little later)."""
        if not self.due():
            return
        try:
            await self.refresh()
        except (StreamsinkError, OSError) as exc:
            self._retry_soon(exc)
        except Exception as exc:
            if not is_driver_error(exc):
                raise
            self._retry_soon(exc)

    async def refresh(self) -> None:
        """Write the keep-alive of every live member now (join those that never could), and
        tell each what the script found (:meth:`KeepAlive.refreshed`).

        :raises StreamsinkError: a script failed.
        """
        now = time.monotonic()
        self._written_at = now  # before the awaits: concurrent calls skip it
        live = [member for member in self._members if member.live(now)]
        for member in live:
            if not member.joined:
                await member.join()
        joined = [member for member in live if member.joined]
        for start in range(0, len(joined), BATCH):
            chunk = joined[start : start + BATCH]
            reply = await self._run(chunk)
            for i, member in enumerate(chunk):
                member.refreshed(int(reply[2 * i]), int(reply[2 * i + 1]))

    def _retry_soon(self, exc: BaseException) -> None:
        retry = min(self._grace / 4, RETRY_AFTER)
        self._written_at = time.monotonic() - self._grace + retry
        _log.warning(
            "keep-alives of %d consumers in group %r: refresh failed, tried again in %g s: %s",
            len(self._members),
            self._group,
            retry,
            exc,
        )

    async def _run(self, members: list[KeepAlive]) -> Any:
        name = keepalive_map(self._group)
        keys: list[str] = [rmap.content(name), registry(self._group)]
        args: list[Any] = [self._group, str(time.time_ns()), rmap.channel(name)]
        for member in members:
            books = member.books
            keys += [books.stream_key, books.consumers]
            args += [
                books.consumer,
                books.stream_id,
                books.consumers_channel,
                "1" if member.checks else "0",
            ]
        with map_redis_errors("admin", self._ctx.where):
            try:
                return await execute(self._ctx.client, *REFRESH_MANY.evalsha(keys, args))
            except rex.NoScriptError:
                pass  # not cached (a restarted server): send the text
            return await execute(self._ctx.client, *REFRESH_MANY.eval(keys, args))


@final
class KeepAliveGroups:
    """A backend's :class:`KeepAliveGroup` instances, one per group and grace period while it
    has members."""

    __slots__ = ("_ctx", "_groups")

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._groups: dict[tuple[str, float], KeepAliveGroup] = {}

    def get(self, group: str, grace: float) -> KeepAliveGroup:
        """The keep-alive group of ``group`` for consumers with ack grace period ``grace``."""
        key = (group, period_of(grace))
        found = self._groups.get(key)
        if found is None:
            found = self._groups[key] = KeepAliveGroup(
                self._ctx, group, key[1], lambda made: self._drop(key, made)
            )
        return found

    def _drop(self, key: tuple[str, float], group: KeepAliveGroup) -> None:
        if self._groups.get(key) is group:
            del self._groups[key]
