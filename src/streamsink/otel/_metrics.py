"""The counters of :meth:`RuntimeStreams.statistics` as OpenTelemetry metrics."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import Final

import attrs
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation

from .._runtime import RuntimeStreams
from .._runtime_statistics import RuntimeStatistics

__all__ = ["MetricsRegistration", "instrument_metrics"]

INSTRUMENTATION_NAME: Final = "streamsink"

# (instrument name, statistics field, description). Names of the messaging semantic
# conventions where they have one, ``streamsink.*`` for the rest.
_SUBSCRIPTION_COUNTERS: Final = (
    ("messaging.client.consumed.messages", "received", "Entries read from the backend"),
    ("streamsink.consumer.redelivered", "redelivered", "Entries read with a delivery count > 1"),
    ("streamsink.consumer.acknowledged", "acknowledged", "Entries acknowledged"),
    ("streamsink.consumer.decode_errors", "decode_errors", "Entries that could not be decoded"),
    ("streamsink.consumer.dead_lettered", "dead_lettered", "Entries dead-lettered"),
    ("streamsink.consumer.retries", "retries", "Backend calls retried"),
    ("streamsink.consumer.groups_recreated", "groups_recreated", "Groups re-created"),
    ("streamsink.consumer.skipped", "skipped", "Entries trimmed before they were read"),
    ("streamsink.consumer.gaps", "gaps", "Losses to trimming found"),
    ("streamsink.consumer.expired", "expired", "Read-ahead entries whose lease ran out"),
    ("streamsink.consumer.filtered", "filtered", "Entries dropped by a topic filter"),
    ("streamsink.consumer.recovered", "recovered", "Own pending entries fetched again"),
    ("streamsink.consumer.reaped", "consumers_reaped", "Idle empty consumers removed"),
    (
        "streamsink.consumer.dead_letter_failures",
        "dead_letter_failures",
        "Dead letters that could not be written",
    ),
)


@attrs.define
class MetricsRegistration:
    """What :func:`instrument_metrics` registered. ``close()`` stops reporting (the instruments
    then observe nothing); it is also what happens once the streams are closed or collected."""

    _streams: weakref.ref[RuntimeStreams]
    closed: bool = False

    def close(self) -> None:
        self.closed = True

    def statistics(self) -> RuntimeStatistics | None:
        streams = self._streams()
        if self.closed or streams is None or streams.closed:
            return None
        return streams.statistics()


def instrument_metrics(
    streams: RuntimeStreams,
    *,
    meter_provider: MeterProvider | None = None,
    attributes: dict[str, str] | None = None,
) -> MetricsRegistration:
    """Report ``streams.statistics()`` through OpenTelemetry metrics (``meter_provider``, default
    the global one): observable counters read at each collection, so nothing is counted twice
    and the hot paths do no metrics work.

    - ``messaging.client.sent.messages`` (events written) and ``streamsink.producer.failed``
      (send calls the backend failed);
    - per consumer group (attribute ``messaging.consumer.group.name``; fan-out readers have
      none): ``messaging.client.consumed.messages`` and ``streamsink.consumer.*`` for every
      field of :class:`~streamsink.SubscriptionStatistics`;
    - ``streamsink.consumer.subscriptions`` (an up-down counter): subscriptions open now.

    Every point also carries ``messaging.system`` (the backend's URL scheme) and ``attributes``.
    Stream ids are never attributes: one stream per session would make a series per session.
    """
    meter = (meter_provider or metrics.get_meter_provider()).get_meter(INSTRUMENTATION_NAME)
    registration = MetricsRegistration(weakref.ref(streams))
    base = {"messaging.system": _system(streams), **(attributes or {})}
    _register(meter, registration, base)
    return registration


def _system(streams: RuntimeStreams) -> str:
    description = streams.backend.description
    return description.partition("://")[0] if "://" in description else description


def _register(meter: Meter, registration: MetricsRegistration, base: dict[str, str]) -> None:
    def sink_field(field: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            snapshot = registration.statistics()
            if snapshot is None:
                return []
            return [Observation(getattr(snapshot.sink, field), base)]

        return observe

    def group_field(field: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            snapshot = registration.statistics()
            if snapshot is None:
                return []
            return [
                Observation(getattr(stats, field), _group_attributes(base, group))
                for group, stats in snapshot.by_group.items()
            ]

        return observe

    def open_subscriptions(_: CallbackOptions) -> Iterable[Observation]:
        snapshot = registration.statistics()
        return [] if snapshot is None else [Observation(snapshot.open_subscriptions, base)]

    meter.create_observable_counter(
        "messaging.client.sent.messages",
        [sink_field("sent")],
        unit="{message}",
        description="Events written by the sink",
    )
    meter.create_observable_counter(
        "streamsink.producer.failed",
        [sink_field("failed")],
        unit="{call}",
        description="Send calls the backend failed",
    )
    for name, field, description in _SUBSCRIPTION_COUNTERS:
        meter.create_observable_counter(
            name, [group_field(field)], unit="{message}", description=description
        )
    meter.create_observable_up_down_counter(
        "streamsink.consumer.subscriptions",
        [open_subscriptions],
        unit="{subscription}",
        description="Subscriptions open now",
    )


def _group_attributes(base: dict[str, str], group: str | None) -> dict[str, str]:
    return base if group is None else {**base, "messaging.consumer.group.name": group}
