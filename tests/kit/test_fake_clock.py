"""FakeClock: a callable clock that moves only when told to."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from streamsink.testing import FakeClock


def test_reads_the_same_until_moved() -> None:
    clock = FakeClock(1000.0)
    assert clock() == clock() == clock.now == 1000.0
    assert clock.advance(2.5) == 1002.5
    assert clock() == 1002.5
    clock.set(10.0)  # a wall clock stepping back
    assert clock() == 10.0
    assert FakeClock()() == 0.0


def test_is_a_clock_callable() -> None:
    """It fits wherever ``Callable[[], float]`` is injected."""
    now: Callable[[], float] = FakeClock(5)
    assert now() == 5.0
    assert isinstance(now(), float)


@pytest.mark.parametrize("bad", [-1.0, math.inf, math.nan, "1", True])
def test_advance_refuses_what_is_not_forward_time(bad: object) -> None:
    clock = FakeClock(1.0)
    with pytest.raises(ValueError, match="FakeClock"):
        clock.advance(bad)  # type: ignore[arg-type]
    assert clock() == 1.0


@pytest.mark.parametrize("bad", [math.inf, math.nan, None])
def test_start_and_set_refuse_non_finite_readings(bad: object) -> None:
    with pytest.raises(ValueError, match="FakeClock"):
        FakeClock(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="FakeClock"):
        FakeClock().set(bad)  # type: ignore[arg-type]
