"""``claim_idle`` of a Redis group consumer: the pages it scans and what it takes; and the
group's ``pending_summary``, which tells the core when a scan can find something.

Without pulse's keep-alive, ``XAUTOCLAIM`` pages from a cursor kept here, then the delivery
counts of the claimed entries (``XPENDING`` per id, pipelined). With it, pages of ``XPENDING``
instead, claiming only entries whose owner is not a live pulse consumer, one script per page
(:mod:`._ownership`). Either way entries trimmed from the stream are dropped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, final

from streamsink.backend import PendingSummary, Record

from . import _wire as wire
from ._deletion import DeletionWatch
from ._keepalive import KeepAlive
from ._ownership import CLAIM, claim_reply
from ._positions import Script

__all__ = ["MAX_CLAIM_PAGES", "OLDEST_IDLE", "SUMMARY_PAGE", "SUMMARY_PAGES", "IdleClaims"]

MAX_CLAIM_PAGES = 10
"""Pages one ``claim_idle`` call may scan while it finds nothing. Bounded on purpose:
fakeredis's cursor could fail to return to ``0-0`` (cunla/fakeredis-py#545)."""


SUMMARY_PAGE = 100
"""Pending entries one ``XPENDING`` page of :data:`OLDEST_IDLE` looks at."""

SUMMARY_PAGES = 10
"""Pages :data:`OLDEST_IDLE` looks at before it gives up telling the oldest idle time (a group
with more pending entries than that is busy: the core then scans every claim interval)."""

OLDEST_IDLE = Script(
    r"""
-- KEYS[1] stream; ARGV: group, page size, most pages. The longest idle time (ms) among the
-- group's pending entries, or -1 when there are more than the pages hold. Read-only.
local size, pages = tonumber(ARGV[2]), tonumber(ARGV[3])
local start, oldest = '-', 0
for _ = 1, pages do
  local rows = redis.call('XPENDING', KEYS[1], ARGV[1], start, '+', size)
  for _, row in ipairs(rows) do
    if row[3] > oldest then oldest = row[3] end
  end
  if #rows < size then return oldest end
  start = '(' .. rows[#rows][1]
end
return -1
"""
)


@final
class IdleClaims:
    """Where one consumer's claims start from, and the claims themselves (the caller has done
    its checks and maps errors)."""

    __slots__ = ("_call", "_consumer", "_cursor", "_from", "_group", "_key", "_pipeline",
                 "_script", "_watch", "_xpending")  # fmt: skip

    def __init__(
        self,
        *,
        key: str,
        group: str,
        consumer: str,
        watch: DeletionWatch,
        pipeline: Callable[[], Any],
        call: Callable[..., Awaitable[Any]],
        script: Callable[[Script, Sequence[Any], Sequence[str]], Awaitable[Any]],
        xpending: Callable[[str, str], Awaitable[Any]] | None = None,
    ) -> None:
        """``xpending``: runs ``XPENDING key group`` (batched with other consumers' by the
        backend, :mod:`._summaries`); ``call`` runs it without one."""
        self._key = key
        self._group = group
        self._consumer = consumer
        self._watch = watch
        self._pipeline = pipeline
        self._call = call
        self._script = script
        self._xpending = xpending or (lambda key, group: call("XPENDING", key, group))
        self._cursor = "0-0"  # XAUTOCLAIM's next start
        self._from = "-"  # the next XPENDING start when sharing the group with pulse

    async def plain(self, idle_ms: int, n: int) -> Sequence[Record]:
        """``XAUTOCLAIM`` pages from the kept cursor until one takes entries (or the scan
        wrapped round), then their delivery counts."""
        for _ in range(MAX_CLAIM_PAGES):
            start = self._cursor
            reply = await self._call(
                "XAUTOCLAIM", self._key, self._group, self._consumer, idle_ms, start, "COUNT", n
            )
            cursor, claimed, _deleted = wire.autoclaim_reply(reply)
            # A cursor that does not move would page forever: start over next time.
            self._cursor = "0-0" if cursor == start else cursor
            live = [(entry_id, fields) for entry_id, fields in claimed if fields is not None]
            if live:
                self._watch.created()  # a claim creates the consumer when it takes entries
                counts = await self._delivery_counts([entry_id for entry_id, _ in live])
                return wire.records(live, counts, default=2)
            if self._cursor == "0-0":
                break
        return []

    async def sharing(self, idle_ms: int, n: int, keepalive: KeepAlive) -> Sequence[Record]:
        """Pages of the ownership-aware claim script (:mod:`._ownership`)."""
        keys = (self._key, keepalive.books.keepalive, keepalive.books.registry)
        stale_us = math.ceil(2 * keepalive.grace * 1_000_000)
        for _ in range(MAX_CLAIM_PAGES):
            now_us = time.time_ns() // 1000
            raw = await self._script(
                CLAIM, [self._group, self._consumer, idle_ms, self._from, n, now_us, stale_us], keys
            )
            next_start, claimed, counts = claim_reply(raw)
            self._from = "-" if next_start == "0-0" else next_start
            if claimed:
                self._watch.created()  # XCLAIM created the consumer to take them
                return wire.records(claimed, counts, default=2)
            if next_start == "0-0":
                break
        return []

    async def summary(self) -> PendingSummary:
        """``XPENDING key group`` (one command, all an idle group costs); when something is
        pending, its longest idle time from pages of ``XPENDING`` (:data:`OLDEST_IDLE`)."""
        reply = await self._xpending(self._key, self._group)
        count = int(reply[0]) if reply else 0
        if count <= 0:
            return PendingSummary(0, None)
        oldest = int(await self._script(OLDEST_IDLE, [self._group, SUMMARY_PAGE, SUMMARY_PAGES],
                                        (self._key,)))  # fmt: skip
        return PendingSummary(count, oldest / 1000 if oldest >= 0 else None)

    async def _delivery_counts(self, entry_ids: Sequence[str]) -> dict[str, int]:
        pipe = self._pipeline()
        for entry_id in entry_ids:
            pipe.execute_command("XPENDING", self._key, self._group, entry_id, entry_id, 1)
        counts: dict[str, int] = {}
        for reply in await pipe.execute():
            counts.update(wire.delivery_counts(reply))
        return counts
