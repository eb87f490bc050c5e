"""The operations checks can fail: each mutant of memory:// breaks one rule of
``OperableBackend``, and the check of that rule catches it (memory:// itself passes them in
tests/memory/test_spi.py)."""

from __future__ import annotations

from typing import Any

import pytest

from streamsink.backend import Backend, PendingInfo, TrimBound
from streamsink.testing import run_spi_check, spi_checks
from streamsink_memory import MemoryBackend, MemoryBroker, MemoryOptions

pytestmark = pytest.mark.anyio


class _DeletesHolders(MemoryBackend):
    """Deletes whatever consumer it is asked to, entries held or not (a bare DELCONSUMER)."""

    async def delete_idle_consumer(
        self, stream_id: str, group: str, consumer: str, *, min_idle: float
    ) -> bool:
        found = self.broker._streams[stream_id].groups.get(group)
        return found is not None and found.consumers.pop(consumer, None) is not None


class _IgnoresAfter(MemoryBackend):
    """Pages from the start whatever ``after`` says."""

    async def list_pending(self, *args: Any, **kwargs: Any) -> list[PendingInfo] | None:
        kwargs["after"] = None
        return await super().list_pending(*args, **kwargs)


class _TrimsOneTooFew(MemoryBackend):
    """Trims approximately: one entry fewer than asked."""

    async def trim_stream(self, stream_id: str, bound: TrimBound) -> int:
        if bound.kind == "maxlen" and bound.count:
            bound = TrimBound.maxlen(bound.count + 1)
        return await super().trim_stream(stream_id, bound)


MUTANTS: dict[str, type[MemoryBackend]] = {
    "delete_idle_consumer_never_drops_one_holding_entries": _DeletesHolders,
    "operations_list_streams_groups_consumers_and_pending": _IgnoresAfter,
    "trim_stream_removes_exactly": _TrimsOneTooFew,
}


@pytest.mark.parametrize("name", sorted(MUTANTS))
async def test_an_operations_check_fails_on_its_mutant(name: str) -> None:
    (check,) = [c for c in spi_checks() if c.name == name]
    broker = MemoryBroker()
    mutant = MUTANTS[name]

    async def factory(*, maxlen: int | None = None) -> Backend:
        return mutant(broker, options=MemoryOptions(maxlen=maxlen or 0))

    with pytest.raises(AssertionError):
        await run_spi_check(check, factory, MemoryBackend().capabilities)
