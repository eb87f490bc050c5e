"""Fixtures for the memory backend tests: fake clocks, a private broker and a backend on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streamsink_memory import MemoryBackend, MemoryBroker, MemoryOptions, reset_brokers

from .helpers import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    """A monotonic clock for idle times that only moves when a test advances it."""
    return FakeClock(1000.0)


@pytest.fixture
def wall_clock() -> FakeClock:
    """A wall clock for entry ids, in epoch seconds, that only moves when a test says so."""
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def broker(clock: FakeClock, wall_clock: FakeClock) -> MemoryBroker:
    """A private broker driven by the fake clocks."""
    return MemoryBroker(clock=clock, wall_clock=wall_clock)


@pytest.fixture
def backend(broker: MemoryBroker) -> MemoryBackend:
    """An unbounded backend on the private broker."""
    return MemoryBackend(broker, options=MemoryOptions(maxlen=0))


@pytest.fixture(autouse=True)
def _fresh_brokers() -> Iterator[None]:
    """Every test starts and ends with no process-wide brokers."""
    reset_brokers()
    yield
    reset_brokers()
