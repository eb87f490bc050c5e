"""The SPI checks of shared reads can fail: each mutant of memory://'s shared reads breaks one
rule, and the check of that rule catches it (memory:// itself passes them in
tests/memory/test_spi.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from streamsink.backend import Backend, SharedCursor, StreamBatch
from streamsink.testing import run_spi_check, spi_checks
from streamsink_memory import MemoryBackend, MemoryBroker, MemoryOptions
from streamsink_memory._shared import MemorySharedReads

pytestmark = pytest.mark.anyio


class _NoInterrupt(MemorySharedReads):
    async def interrupt(self, lane: int) -> None:
        return None


class _NoGaps(MemorySharedReads):
    async def read(
        self, cursors: Sequence[SharedCursor], count: int, block: float, *, lane: int | None
    ) -> list[StreamBatch]:
        return [
            b._replace(records=list(b.records))
            for b in await super().read(cursors, count, block, lane=lane)
        ]


class _OneBatch(MemorySharedReads):
    async def read(
        self, cursors: Sequence[SharedCursor], count: int, block: float, *, lane: int | None
    ) -> list[StreamBatch]:
        return (await super().read(cursors, count, block, lane=lane))[:1]


MUTANTS: dict[str, type[MemorySharedReads]] = {
    "interrupt_ends_a_blocked_read_without_error": _NoInterrupt,
    "shared_reads_report_entries_trimmed_unread": _NoGaps,
    "one_read_serves_many_cursors": _OneBatch,
}


@pytest.mark.parametrize("name", sorted(MUTANTS))
async def test_a_shared_reads_check_fails_on_its_mutant(name: str) -> None:
    (check,) = [c for c in spi_checks() if c.name == name]
    mutant = MUTANTS[name]
    broker = MemoryBroker()

    class Mutated(MemoryBackend):
        async def open_shared_reads(self) -> Any:
            return mutant(self._broker, self._handles)

    async def factory(*, maxlen: int | None = None) -> Backend:
        return Mutated(broker, options=MemoryOptions(maxlen=maxlen or 0))

    with pytest.raises((AssertionError, TimeoutError, ExceptionGroup)):
        await run_spi_check(check, factory, MemoryBackend().capabilities)
