"""``SingleFlight``: concurrent calls with one key share one call.

When a thousand SSE clients come back at once after a load balancer's reload, each resumes one
of a few streams after one of a few ids: asking the broker once per (stream, id) instead of once
per client makes what a reconnect costs grow with the streams, not with the clients.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import anyio

__all__ = ["SingleFlight"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Flight(Generic[V]):
    __slots__ = ("done", "ok", "value")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.ok = False
        self.value: V | None = None


class SingleFlight(Generic[K, V]):
    """Calls of :meth:`run` with an equal key while one is in flight wait for that one and
    return its value. Only a value is shared: when the call in flight fails (or its caller is
    cancelled), each waiting caller makes the call again itself, so every caller gets its own
    error. One event loop."""

    __slots__ = ("_flights",)

    def __init__(self) -> None:
        self._flights: dict[K, _Flight[V]] = {}

    @property
    def in_flight(self) -> int:
        """Keys with a call in flight."""
        return len(self._flights)

    async def run(self, key: K, call: Callable[[], Awaitable[V]]) -> V:
        """``await call()``, or the value of the call in flight for ``key``.

        :raises: what ``call`` raised, when this caller made it.
        """
        while (flight := self._flights.get(key)) is not None:
            await flight.done.wait()
            if flight.ok:
                return flight.value  # type: ignore[return-value]
        flight = self._flights[key] = _Flight()
        try:
            flight.value = await call()
            flight.ok = True
            return flight.value
        finally:
            del self._flights[key]
            flight.done.set()
