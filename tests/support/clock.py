"""A fake monotonic clock for tests of time rules (leases, idle claims) that must not sleep.

Same interface as the public ``streamsink.testing.FakeClock`` being added; kept private here
until it ships.
"""

from __future__ import annotations

__all__ = ["FakeClock"]


class FakeClock:
    """Seconds that pass only when told: call it for the time, :meth:`advance` to move it."""

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the time forward by ``seconds`` (>= 0).

        :raises ValueError: ``seconds`` is negative (a monotonic clock never goes back).
        """
        if seconds < 0:
            raise ValueError(f"a monotonic clock never goes back (advance({seconds}))")
        self._now += seconds
