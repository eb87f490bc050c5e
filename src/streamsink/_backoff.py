"""Jittered exponential backoff with a time budget, for reconnects and group re-creation."""

from __future__ import annotations

import random

import anyio

from ._exceptions import StreamsinkError, SubscriptionError

__all__ = ["Backoff"]


class Backoff:
    """Sleep longer after each consecutive failure; give up once failures last past ``budget``.

    Delays double from ``initial`` up to ``maximum``, each drawn from [d/2, d] so that many
    consumers losing the same server do not come back in lock step, and never zero, so no failure
    mode can hot-loop.
    """

    def __init__(self, *, budget: float, initial: float = 0.05, maximum: float = 2.0) -> None:
        self._budget = budget
        self._initial = initial
        self._maximum = maximum
        self._attempt = 0
        self._first_failure: float | None = None

    @property
    def attempts(self) -> int:
        """Consecutive failures so far."""
        return self._attempt

    def reset(self) -> None:
        """A call succeeded: the next failure starts over."""
        self._attempt = 0
        self._first_failure = None

    async def wait(self, error: StreamsinkError) -> None:
        """Sleep before the next attempt.

        :raises SubscriptionError: failures have lasted longer than the budget (``from error``).
        """
        now = anyio.current_time()
        if self._first_failure is None:
            self._first_failure = now
        elif now - self._first_failure > self._budget:
            raise SubscriptionError(
                f"giving up after {self._attempt} attempts over {now - self._first_failure:.1f} s "
                f"(reconnect_timeout={self._budget:g} s): {error}"
            ) from error
        delay = min(self._maximum, self._initial * 2**self._attempt)
        self._attempt += 1
        await anyio.sleep(random.uniform(delay / 2, delay))
