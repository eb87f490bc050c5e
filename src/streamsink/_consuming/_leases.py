"""Leases of read-ahead: events a group subscription read but the application has not taken yet.

Every entry read through a consumer group is pending for this consumer from the moment it is
read; once it has been idle for ``ack_grace_period`` any consumer of the group may claim it. Read
ahead of a slow application would then be handed out by two consumers. :class:`ReadAheadLeases`
keeps, per batch read, when its lease was last renewed and which of its entries still wait, and
answers the two questions the subscription asks:

- which batches to renew now (half a grace period old, while the application makes progress),
  and when that is next the case (so a long blocking read wakes in time);
- whether a batch may still be handed to the application (its lease has not run out).

It is pure bookkeeping on an injected clock (a ``Callable[[], float]`` of seconds; the engine
gives it :func:`streamsink.lowlevel.clock`): it does no I/O and never sleeps, so the rules are
tested on a fake clock. Renewing is the caller's job: it sends the deliveries of :meth:`due`'s
answer to the backend (``touch`` of :meth:`Renewal.delivery_keys`: a touch names a delivery, so a
lease knows the delivery counts of its entries), then reports success with :meth:`renewed`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence

import attrs

from ..backend import DeliveryKey, Record
from ._handling import Handling, HandlingLeases

__all__ = ["EXPIRY_FRACTION", "Lease", "ReadAheadLeases", "Renewal"]

#: A lease counts as run out at this fraction of the grace period: the group's idle clock started
#: when the server delivered the batch, a little before this process saw it, and another consumer
#: claims on its own schedule, so handing out an event at the very edge would race it.
EXPIRY_FRACTION = 0.9


class Lease:
    """One batch of read-ahead: when it was read or last renewed (``renewed_at``), the ids of
    its entries the application has not taken yet (oldest first), and what a renewal needs to
    name their deliveries: the records read (``records``), kept as they are until the first
    renewal reduces them to the counts of the redeliveries among them. (Counting on the read
    path instead would cost every entry read about 0.1 µs; most leases never renew: their
    events are taken within half a grace period.)"""

    __slots__ = ("_records", "_recounts", "ids", "renewed_at")

    def __init__(self, ids: list[str], now: float, records: Sequence[Record] = ()) -> None:
        self.ids = ids
        self.renewed_at = now
        self._records = records
        self._recounts: dict[str, int] = {}

    def delivery_keys(self) -> list[DeliveryKey]:
        """The deliveries still waiting, as the backend's ``touch`` names them."""
        if self._records:
            self._recounts = {
                r.entry_id: r.delivery_count for r in self._records if r.delivery_count != 1
            }
            self._records = ()  # no payloads held past the first renewal
        counts = self._recounts
        if not counts:
            return [DeliveryKey(entry_id, 1) for entry_id in self.ids]
        return [DeliveryKey(entry_id, counts.get(entry_id, 1)) for entry_id in self.ids]


@attrs.frozen(slots=True)
class Renewal:
    """Leases due for renewal, as of ``at`` (the time they count as renewed once the backend
    took the renewal)."""

    leases: tuple[Lease, ...]
    at: float
    #: deliveries a handler works on (``renew_while_handling``)
    handling: tuple[Handling, ...] = ()

    @property
    def ids(self) -> list[str]:
        """The entry ids to renew, batch by batch, then the deliveries being handled."""
        ids = [entry_id for lease in self.leases for entry_id in lease.ids]
        return ids + [h.key.entry_id for h in self.handling]

    def delivery_keys(self) -> list[DeliveryKey]:
        """The deliveries to renew (what ``touch`` takes), batch by batch, then those being
        handled."""
        keys = [key for lease in self.leases for key in lease.delivery_keys()]
        return keys + [h.key for h in self.handling]


class ReadAheadLeases:
    """The leases of a subscription's read-ahead, oldest batch first.

    The application takes events in the order batches were handed over, so "taken" is a count:
    the subscription reports how many events are still outstanding and the oldest ids go.
    """

    __slots__ = (
        "_grace",
        "_handed",
        "_now",
        "_progress_at",
        "_taken_seen",
        "_waiting",
        "_waiting_ids",
        "clock",
        "handling",
        "limit",
    )

    def __init__(
        self, grace: float, clock: Callable[[], float], *, renew_while_handling: float | None = None
    ) -> None:
        #: the clock every time here is read on (and a :class:`Lease`'s ``renewed_at`` is of)
        self.clock = clock
        self._grace = grace
        self._now = clock
        #: age at which a lease has run out (see EXPIRY_FRACTION)
        self.limit = grace * EXPIRY_FRACTION
        self._waiting: deque[Lease] = deque()
        self._waiting_ids = 0
        self._handed = 0
        self._taken_seen = 0
        self._progress_at = clock()
        #: manual deliveries in the application's hands, kept renewed (None: not asked for)
        self.handling = (
            None
            if renew_while_handling is None
            else HandlingLeases(grace, renew_while_handling, self.limit, clock)
        )

    def handed(self, lease: Lease) -> None:
        """A batch went to the application's buffer."""
        self._waiting.append(lease)
        self._waiting_ids += len(lease.ids)
        self._handed += len(lease.ids)

    def sync(self, outstanding: int) -> None:
        """Forget the ids the application has taken: all but the newest ``outstanding``."""
        waiting = self._waiting
        taken = self._waiting_ids - outstanding
        while taken > 0 and waiting:
            lease = waiting[0]
            if len(lease.ids) <= taken:
                waiting.popleft()
                taken -= len(lease.ids)
                self._waiting_ids -= len(lease.ids)
            else:
                lease.ids = lease.ids[taken:]
                self._waiting_ids -= taken
                taken = 0

    def expired(self, lease: Lease) -> bool:
        """True once ``lease`` has run out: its entries may be another consumer's by now. (The
        engine's hand-out path inlines this test: it runs once per event.)"""
        return self._now() - lease.renewed_at >= self.limit

    def due(self, outstanding: int, held: Lease | None = None) -> Renewal | None:
        """The leases to renew now (None when there are none): at least half a grace period old
        and not run out — and none while the application has taken nothing for a whole grace
        period (a handler stuck on one event must not keep its read-ahead from the rest of the
        group). ``outstanding`` is how many events handed over the application has not taken
        yet; ``held`` is a batch the caller read but has not handed over yet."""
        now = self._now()
        self.sync(outstanding)
        taken = self._handed - outstanding
        if taken != self._taken_seen:
            self._taken_seen = taken
            self._progress_at = now
        # Deliveries being handled are renewed however long the handler takes (within its
        # limit): that is what they are renewed for.
        handling = () if self.handling is None else tuple(self.handling.due(now))
        if now - self._progress_at >= self._grace:
            return Renewal((), now, handling) if handling else None
        old = now - self._grace / 2
        limit = self.limit
        due = [
            lease
            for lease in self._waiting
            if lease.renewed_at <= old and now - lease.renewed_at < limit
        ]
        if held is not None and held.renewed_at <= old and now - held.renewed_at < limit:
            due.append(held)
        return Renewal(tuple(due), now, handling) if due or handling else None

    def next_due(self, outstanding: int) -> float:
        """When :meth:`due` next has a lease to renew (clock seconds; ``math.inf`` when none
        waits, or all ran out): the earliest time a waiting lease is half a grace period old.
        A pump whose reads may block long wakes at this time, not before. ``outstanding`` as
        for :meth:`due`."""
        self.sync(outstanding)
        now = self._now()
        handling = math.inf if self.handling is None else self.handling.next_due(now)
        if not self._waiting:
            return handling
        limit = self.limit
        renewed = [lease.renewed_at for lease in self._waiting if now - lease.renewed_at < limit]
        return min(min(renewed) + self._grace / 2 if renewed else math.inf, handling)

    @staticmethod
    def renewed(renewal: Renewal) -> None:
        """The backend took ``renewal``: its leases count from the time it was found due."""
        for lease in renewal.leases:
            lease.renewed_at = renewal.at
        for handling in renewal.handling:
            handling.renewed_at = renewal.at

    def waiting_ids(self) -> Iterator[str]:
        """Every id handed over and not yet taken."""
        for lease in self._waiting:
            yield from lease.ids
