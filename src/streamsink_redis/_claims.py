"""``claim_idle`` of a Redis group consumer: the pages it scans and what it takes.

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

from streamsink.backend import Record

from . import _wire as wire
from ._deletion import DeletionWatch
from ._keepalive import KeepAlive
from ._ownership import CLAIM, claim_reply
from ._positions import Script

__all__ = ["MAX_CLAIM_PAGES", "IdleClaims"]

MAX_CLAIM_PAGES = 10
"""Pages one ``claim_idle`` call may scan while it finds nothing. Bounded on purpose:
fakeredis's cursor could fail to return to ``0-0`` (cunla/fakeredis-py#545)."""


@final
class IdleClaims:
    """Where one consumer's claims start from, and the claims themselves (the caller has done
    its checks and maps errors)."""

    __slots__ = ("_call", "_consumer", "_cursor", "_from", "_group", "_key", "_pipeline",
                 "_script", "_watch")  # fmt: skip

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
    ) -> None:
        self._key = key
        self._group = group
        self._consumer = consumer
        self._watch = watch
        self._pipeline = pipeline
        self._call = call
        self._script = script
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

    async def _delivery_counts(self, entry_ids: Sequence[str]) -> dict[str, int]:
        pipe = self._pipeline()
        for entry_id in entry_ids:
            pipe.execute_command("XPENDING", self._key, self._group, entry_id, entry_id, 1)
        counts: dict[str, int] = {}
        for reply in await pipe.execute():
            counts.update(wire.delivery_counts(reply))
        return counts
