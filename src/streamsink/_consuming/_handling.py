"""``HandlingLeases``: the leases of manual deliveries a handler is working on, renewed while it
works (``SubscriberOptions.renew_while_handling``), so a long handler is not redelivered to
another consumer half-way through.

Pure bookkeeping on the read-ahead leases' clock, as :mod:`._leases`: the subscription records a
delivery when it hands it out and drops it when it is settled; the pump asks what is due with the
read-ahead's leases (:meth:`ReadAheadLeases.due` includes these) and renews them in the same
``touch``. A delivery is renewed every half grace period until it is settled, or until it has
been in the application's hands for ``limit`` seconds: past that a hung handler loses its lease
and the group redelivers the entry, as without renewal. A lease that ran out before its renewal
(the process stalled) is never renewed: the entry may be another consumer's by now.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..backend import DeliveryKey

__all__ = ["Handling", "HandlingLeases"]


class Handling:
    """One delivery in the application's hands."""

    __slots__ = ("handed_at", "key", "renewed_at")

    def __init__(self, key: DeliveryKey, now: float, renewed_at: float) -> None:
        self.key = key
        self.handed_at = now
        self.renewed_at = renewed_at


class HandlingLeases:
    """The deliveries being handled, by entry id."""

    __slots__ = ("_expiry", "_grace", "_limit", "_now", "_open")

    def __init__(
        self, grace: float, limit: float, expiry: float, clock: Callable[[], float]
    ) -> None:
        """``grace``: the group's grace period; ``limit``: how long a delivery's lease is kept
        renewed; ``expiry``: the age at which a lease counts as run out."""
        self._grace = grace
        self._limit = limit
        self._expiry = expiry
        self._now = clock
        self._open: dict[str, Handling] = {}

    def __len__(self) -> int:
        return len(self._open)

    def handed(self, key: DeliveryKey, renewed_at: float | None = None) -> None:
        """``key`` went to the application; its lease was last renewed at ``renewed_at`` (its
        read-ahead batch's renewal; default now)."""
        now = self._now()
        self._open[key.entry_id] = Handling(key, now, now if renewed_at is None else renewed_at)

    def settled(self, entry_id: str) -> None:
        self._open.pop(entry_id, None)

    def due(self, now: float) -> list[Handling]:
        """Deliveries half a grace period from their last renewal, still within ``limit`` of
        their hand-out and whose lease has not run out."""
        old = now - self._grace / 2
        return [h for h in self._open.values() if h.renewed_at <= old and self._renewable(h, now)]

    def next_due(self, now: float) -> float:
        """When :meth:`due` next has something (``math.inf``: never)."""
        times = [
            h.renewed_at + self._grace / 2 for h in self._open.values() if self._renewable(h, now)
        ]
        return min(times) if times else math.inf

    def _renewable(self, handling: Handling, now: float) -> bool:
        return now - handling.renewed_at < self._expiry and (
            handling.renewed_at + self._grace / 2 - handling.handed_at < self._limit
        )
