"""A clock for tests: time moves only when the test says so."""

from __future__ import annotations

import math

__all__ = ["FakeClock"]


class FakeClock:
    """A callable clock (``Callable[[], float]``, seconds) whose time moves only through
    :meth:`advance` or :meth:`set`: give it wherever a clock is injected
    (``MemoryBroker(clock=...)``, a lease keeper) and a test checks time rules without sleeping.

    Guarantees: ``clock()`` returns the same value until the test moves it; :meth:`advance`
    never moves it backwards (so it can stand in for a monotonic clock); :meth:`set` may, for a
    wall clock that steps back.

    :param start: the first reading, in seconds (default 0.0).
    :raises ValueError: ``start`` is not a finite number.
    """

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        self._now = _finite(start, "start")

    def __call__(self) -> float:
        """The current reading, in seconds."""
        return self._now

    @property
    def now(self) -> float:
        """The current reading (the same as calling the clock)."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` and return the new reading.

        :raises ValueError: ``seconds`` is negative or not finite (time never runs backwards
            through ``advance``; use :meth:`set`).
        """
        seconds = _finite(seconds, "seconds")
        if seconds < 0:
            raise ValueError(f"FakeClock.advance({seconds!r}): seconds must not be negative")
        self._now += seconds
        return self._now

    def set(self, now: float) -> None:
        """Set the reading to ``now``, forwards or backwards (a wall clock being corrected).

        :raises ValueError: ``now`` is not a finite number.
        """
        self._now = _finite(now, "now")

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r})"


def _finite(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"FakeClock: {name} must be a number of seconds, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"FakeClock: {name} must be finite, got {value!r}")
    return value
