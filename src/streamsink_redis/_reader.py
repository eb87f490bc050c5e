"""A fan-out reader on one Redis stream (the SPI's ``StreamReader``): XREAD with a cursor."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, final

from streamsink.backend import Record

from . import _wire as wire
from ._handle import Context, Handle

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
        cursor: str,
        on_close: Callable[[Handle], None],
    ) -> None:
        super().__init__(ctx, stream_id, key, on_close)
        self._cursor = cursor

    @property
    def cursor(self) -> str:
        """The id of the last entry returned (or the resolved start)."""
        return self._cursor

    def _describe(self) -> str:
        return f"redis reader on {self._stream_id!r}"

    async def read(self, count: int, block: float) -> Sequence[Record]:
        """``XREAD COUNT n [BLOCK ms] STREAMS key <cursor>`` on the dedicated connection."""
        self._check()
        n = self._count(count)
        block_ms = self._block_ms(block)

        def command(wait_ms: int) -> list[Any]:
            args: list[Any] = ["XREAD", "COUNT", n]
            if wait_ms > 0:
                args += ["BLOCK", wait_ms]
            return [*args, "STREAMS", self._key, self._cursor]

        with self._errors("read"):
            reply = await self._reads.read(command, block_ms)
        entries = wire.entries_of_read(reply)
        if entries:
            self._cursor = entries[-1][0]
        return wire.records(entries)
