"""What a scenario run returns (a rate or latency samples) and the statistics over repeats."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import anyio

__all__ = ["Latency", "Rate", "Sample", "Spread", "pace", "percentile", "spread"]


@dataclass(frozen=True)
class Rate:
    """``events`` done in ``seconds`` (the timed region only)."""

    events: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds


@dataclass(frozen=True)
class Latency:
    """One end-to-end latency per event, in microseconds (send call -> event in the consumer)."""

    samples_us: tuple[float, ...]

    @property
    def p50(self) -> float:
        return percentile(self.samples_us, 50)

    @property
    def p99(self) -> float:
        return percentile(self.samples_us, 99)


Sample = Rate | Latency


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of unsorted ``values``."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, round(q / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float


def spread(values: Sequence[float]) -> Spread:
    return Spread(statistics.median(values), min(values), max(values))


async def pace(rate: float, count: int, send: Callable[[int], Awaitable[object]]) -> None:
    """Call ``send(i)`` ``count`` times at ``rate`` calls per second (no catch-up burst beyond
    what lateness forces: a late call goes at once, the schedule is kept)."""
    period = 1.0 / rate
    start = time.perf_counter()
    for i in range(count):
        delay = start + i * period - time.perf_counter()
        if delay > 0:
            await anyio.sleep(delay)
        await send(i)
