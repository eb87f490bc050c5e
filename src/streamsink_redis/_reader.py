"""A fan-out reader on one Redis stream (the SPI's ``StreamReader``): XREAD with a cursor."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, final

from streamsink.backend import Record, RecordBatch

from . import _wire as wire
from ._consumer import CHECK_AFTER
from ._handle import Context, Handle
from ._positions import CHECK_STREAM, ReaderPosition, Script

_CHECK_STREAM = Script(CHECK_STREAM)

__all__ = ["RedisStreamReader"]


@final
class RedisStreamReader(Handle):
    """Reads every entry after its cursor with ``XREAD``; no group, nothing stored in Redis.

    Open with :meth:`RedisBackend.open_reader`, which resolves the start position to a concrete
    id at once (``newest`` = the stream's last generated id), so nothing appended after opening
    is missed.
    """

    def __init__(
        self,
        ctx: Context,
        stream_id: str,
        key: str,
        position: ReaderPosition,
        on_close: Callable[[Handle], None],
    ) -> None:
        super().__init__(ctx, stream_id, key, on_close)
        self._position = position
        self._caught_up_at = -math.inf

    @property
    def cursor(self) -> str:
        """The id of the last entry returned (or the resolved start)."""
        return self._position.cursor

    def _describe(self) -> str:
        return f"redis reader on {self._stream_id!r}"

    async def read(self, count: int, block: float) -> Sequence[Record]:
        """``XREAD COUNT n [BLOCK ms] STREAMS key <cursor>`` on the dedicated connection.

        A read that may find the reader behind trimming (the first one, one after a full batch
        or an idle spell) is preceded, in the same round trip, by a script that looks at the
        stream's first entry (and its counters when something may have been trimmed ahead of
        the cursor) and does not block; entries trimmed before the reader got to them come back
        as the batch's ``gap``.
        """
        self._check()
        n = self._count(count)
        block_ms = self._block_ms(block)
        position = self._position
        cursor = position.cursor

        def command(wait_ms: int) -> list[Any]:
            args: list[Any] = ["XREAD", "COUNT", n]
            if wait_ms > 0:
                args += ["BLOCK", wait_ms]
            return [*args, "STREAMS", self._key, cursor]

        if time.monotonic() - self._caught_up_at > CHECK_AFTER:
            always = "1" if position.pos is None else "0"
            with self._errors("read"):
                counts, reply = await self._checked_read(_CHECK_STREAM, [cursor, always], command)
            entries = wire.entries_of_read(reply)
            self._note_read(len(entries), n)
            added, length, first = counts[:3]
            ids = [entry_id for entry_id, _ in entries]
            if added is None:  # nothing trimmed ahead of the cursor
                position.advanced(ids)
                gap = None
            else:
                gap = position.checked(
                    self._stream_id,
                    ids,
                    int(added),
                    int(length),
                    wire.text(first) if first else None,
                    caught_up=len(entries) < n,
                )
            records = wire.records(entries)
            if gap is not None:
                return RecordBatch(records, gap)
            if records or block_ms == 0:
                return records
            cursor = position.cursor

        with self._errors("read"):
            reply = await self._reads.read(command, block_ms)
        entries = wire.entries_of_read(reply)
        self._note_read(len(entries), n)
        position.advanced([entry_id for entry_id, _ in entries])
        return wire.records(entries)

    def _note_read(self, got: int, asked: int) -> None:
        self._caught_up_at = time.monotonic() if got < asked else -math.inf
