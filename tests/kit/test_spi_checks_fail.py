"""The SPI checks can fail: each mutant of memory:// breaks one SPI rule, and the check of that
rule catches it (memory:// itself passes them all in tests/memory/test_spi.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from streamsink.backend import Backend
from streamsink.testing import FaultyBackend, run_spi_check, spi_checks
from streamsink_memory import MemoryBackend, MemoryBroker, MemoryOptions

pytestmark = pytest.mark.anyio


class _Mutant(FaultyBackend):
    """memory:// with one SPI method doing something else."""

    def __init__(self, inner: Backend, method: str, replace: Callable[..., Any]) -> None:
        super().__init__(inner)
        self._method = method
        self._replace = replace

    async def _call(
        self, method: str, streams: Sequence[str], fn: Callable[..., Awaitable[Any]], *args: Any
    ) -> Any:
        if method == self._method:
            return await self._replace(fn, *args)
        return await super()._call(method, streams, fn, *args)


async def _nothing(fn: Any, *args: Any) -> None:
    return None


async def _any_idle(fn: Any, min_idle: float, count: int) -> Any:
    return await fn(0, count)


async def _without_counting(fn: Any, after: Any, count: int) -> Any:
    from streamsink.backend import Record

    return [Record(r.entry_id, r.name, r.payload, r.topic, 1) for r in await fn(after, count)]


async def _by_entry(fn: Any, keys: Any) -> Any:
    """Settle by entry id alone, as the SPI did before settling named deliveries: memory://
    then acts on the entry's latest delivery, whichever delivery the key named."""
    return await fn([str(key) for key in keys])


MUTANTS = {
    "ack_is_idempotent": ("ack", _nothing),
    "claim_takes_idle_entries_with_counts": ("claim_idle", _any_idle),
    "touch_restarts_the_idle_time_of_own_entries": ("touch", _nothing),
    "nack_makes_entries_claimable_at_once": ("nack", _nothing),
    "nack_of_a_superseded_delivery_changes_nothing": ("nack", _by_entry),
    "touch_of_a_superseded_delivery_changes_nothing": ("touch", _by_entry),
    "own_pending_reads_count_deliveries": ("read_own_pending", _without_counting),
    "handles_stay_destroyed": ("destroy", _nothing),
    "destroy_ends_blocked_reads": ("destroy", _nothing),
}


@pytest.mark.parametrize("name", sorted(MUTANTS))
async def test_a_check_fails_on_the_mutant_it_targets(name: str) -> None:
    (check,) = [c for c in spi_checks() if c.name == name]
    method, replace = MUTANTS[name]
    broker = MemoryBroker()

    async def factory(*, maxlen: int | None = None) -> Backend:
        inner = MemoryBackend(broker, options=MemoryOptions(maxlen=maxlen or 0))
        return _Mutant(inner, method, replace)

    # A failure inside a task group of the check comes wrapped in an ExceptionGroup.
    with pytest.raises((AssertionError, TimeoutError, ExceptionGroup)):
        await run_spi_check(check, factory, MemoryBackend().capabilities)
