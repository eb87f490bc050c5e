"""RuntimeStreams.statistics() and its OpenTelemetry metrics (SDK in-memory reader)."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import attrs
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import streamsink
from streamsink import StartPosition, StreamEvent, SubscriptionStatistics
from streamsink.otel import instrument_metrics
from streamsink.otel._metrics import _SUBSCRIPTION_COUNTERS

pytestmark = pytest.mark.anyio

OLDEST = StartPosition.oldest()


def _url() -> str:
    return f"memory://otel-{uuid.uuid4().hex}"


async def _consume(streams: streamsink.RuntimeStreams, group: str | None, count: int) -> None:
    subscriber = streams.new_subscriber(group=group)
    async with subscriber.subscribe("session/s-1", start=OLDEST) as events:
        seen = 0
        async for _ in events:
            seen += 1
            if seen == count:
                break


async def test_statistics_snapshot_counts_closed_subscriptions_too() -> None:
    async with streamsink.connect(_url()) as streams:
        await streams.sink.send_many(StreamEvent("usage", "r", "s-1", payload=i) for i in range(3))
        await streams.sink.send(StreamEvent("usage", "r", "s-1"))
        await _consume(streams, "billing", 4)
        await _consume(streams, None, 4)
        subscriber = streams.new_subscriber(group="live")
        async with subscriber.subscribe("session/s-1", start=OLDEST) as events:
            await anext(aiter(events))
            snapshot = streams.statistics()
            assert snapshot.open_subscriptions == 1
            assert snapshot.by_group["live"].received >= 1
        snapshot = streams.statistics()
        assert snapshot.sink == streamsink.SinkStatistics(sent=4, failed=0)
        assert snapshot.open_subscriptions == 0
        assert set(snapshot.by_group) == {"billing", None, "live"}
        assert snapshot.by_group["billing"].received == 4
        assert snapshot.by_group["billing"].acknowledged == 4
        assert snapshot.by_group[None].received == 4
        assert snapshot.subscriptions.received == sum(
            s.received for s in snapshot.by_group.values()
        )


async def test_failed_sends_are_counted() -> None:
    async with streamsink.connect(_url()) as streams:

        async def refuse(entries: Any) -> list[str]:
            raise streamsink.PublishError("refused")

        sink = streamsink.StreamSink(streams.backend)
        sink._append = refuse  # type: ignore[method-assign]
        with pytest.raises(streamsink.PublishError):
            await sink.send(StreamEvent("usage", "r", "s-1"))
        with pytest.raises(streamsink.ConfigurationError):
            await sink.send(StreamEvent("usage", "r", ""))  # a bad event is not a failure
        assert sink.statistics() == streamsink.SinkStatistics(sent=0, failed=1)


async def test_every_subscription_counter_is_exported() -> None:
    exported = {field for _, field, _ in _SUBSCRIPTION_COUNTERS}
    assert exported == set(attrs.fields_dict(SubscriptionStatistics))


def _points(reader: InMemoryMetricReader) -> dict[tuple[str, tuple[tuple[str, Any], ...]], Any]:
    data = reader.get_metrics_data()
    found: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}
    if data is None:  # nothing observed
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    found[(metric.name, tuple(sorted(point.attributes.items())))] = point.value
    return found


async def test_metrics_through_an_sdk_reader() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    async with streamsink.connect(_url()) as streams:
        registration = instrument_metrics(
            streams, meter_provider=provider, attributes={"service.name": "drain"}
        )
        for i in range(5):
            await streams.sink.send(StreamEvent("usage", "r", "s-1", payload=i))
        await _consume(streams, "persist", 5)
        base = (("messaging.system", "memory"), ("service.name", "drain"))
        grouped = tuple(sorted((*base, ("messaging.consumer.group.name", "persist"))))
        points = _points(reader)
        assert points[("messaging.client.sent.messages", base)] == 5
        assert points[("streamsink.producer.failed", base)] == 0
        assert points[("messaging.client.consumed.messages", grouped)] == 5
        assert points[("streamsink.consumer.acknowledged", grouped)] == 5
        assert points[("streamsink.consumer.subscriptions", base)] == 0
        registration.close()
        assert _points(reader) == {}  # closed: nothing observed any more
    provider.shutdown()


async def test_no_series_per_stream() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    async with streamsink.connect(_url()) as streams:
        instrument_metrics(streams, meter_provider=provider)
        for n in range(20):
            await streams.sink.send(StreamEvent("usage", "r", f"s-{n}"))
        readers = [streams.new_subscriber(group="g") for _ in range(3)]
        async with anyio.create_task_group() as tg:
            for n, subscriber in enumerate(readers):

                async def take(subscriber: Any = subscriber, n: int = n) -> None:
                    async with subscriber.subscribe(f"session/s-{n}", start=OLDEST) as events:
                        await anext(aiter(events))

                tg.start_soon(take)
        consumed = [k for k in _points(reader) if k[0] == "messaging.client.consumed.messages"]
        assert len(consumed) == 1  # one group, one series, whatever the streams
    provider.shutdown()
