"""``RuntimeStreams.statistics()``: one snapshot of what a runtime's sink and subscriptions did."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from ._consuming import SubscriptionStatistics

__all__ = ["RuntimeStatistics", "SinkStatistics", "SubscriptionTally"]

_FIELDS = tuple(field.name for field in attrs.fields(SubscriptionStatistics))
_ZERO = SubscriptionStatistics(**dict.fromkeys(_FIELDS, 0))


@attrs.frozen
class SinkStatistics:
    """Counters of a sink (only ever grow)."""

    #: events written (each event of a ``send_many`` counts)
    sent: int
    #: ``send``/``send_many`` calls the backend failed (``PublishError``,
    #: ``BackendUnavailableError``: may or may not be written); bad events are not counted
    failed: int


@attrs.frozen
class RuntimeStatistics:
    """What a :class:`~streamsink.RuntimeStreams` did since it was made. Counters only grow:
    those of a subscription stay in the totals once it closed.

    .. attribute:: sink             the sink's counters
    .. attribute:: subscriptions    every subscription's counters, summed
    .. attribute:: by_group         the same, by consumer group (``None``: fan-out readers)
    .. attribute:: open_subscriptions  subscriptions open now
    """

    sink: SinkStatistics
    subscriptions: SubscriptionStatistics
    by_group: Mapping[str | None, SubscriptionStatistics]
    open_subscriptions: int


def add(a: SubscriptionStatistics, b: SubscriptionStatistics) -> SubscriptionStatistics:
    return SubscriptionStatistics(**{f: getattr(a, f) + getattr(b, f) for f in _FIELDS})


class SubscriptionTally:
    """The summed counters of the subscriptions that closed, by group: a closing subscription
    hands its last counters here, so totals never go down when subscriptions come and go."""

    __slots__ = ("_closed",)

    def __init__(self) -> None:
        self._closed: dict[str | None, SubscriptionStatistics] = {}

    def retire(self, group: str | None, statistics: SubscriptionStatistics) -> None:
        self._closed[group] = add(self._closed.get(group, _ZERO), statistics)

    def snapshot(
        self, sink: SinkStatistics, open_subscriptions: Iterable[Any]
    ) -> RuntimeStatistics:
        """Totals of the closed subscriptions plus the open ones (``group``, ``statistics()``)."""
        by_group = dict(self._closed)
        count = 0
        for subscription in open_subscriptions:
            count += 1
            group = subscription.group
            by_group[group] = add(by_group.get(group, _ZERO), subscription.statistics())
        total = _ZERO
        for statistics in by_group.values():
            total = add(total, statistics)
        return RuntimeStatistics(
            sink=sink,
            subscriptions=total,
            by_group=MappingProxyType(by_group),
            open_subscriptions=count,
        )
