"""Rule 17 of docs/contract.md: topics written by sinks, filtered by subscriptions."""

from __future__ import annotations

from ..._topics import event_topic
from ...backend import Backend, StartPosition
from .._harness import Harness
from ._registry import check

__all__: list[str] = []


_TOPICS: list[str | None] = ["ops", "audit", None, "devops", "ops"]


async def _publish_topics(h: Harness, backend: Backend, session: str) -> list[str]:
    """``_TOPICS`` as entries of ``session/<session>``, payload index = position; their ids."""
    sink = h.sink(backend, topic=event_topic)
    events = [h.event(session, i, topic=topic) for i, topic in enumerate(_TOPICS)]
    return [published.entry_id for published in await sink.send_many(events)]


@check("17", "fan_out")
async def sinks_write_derived_topics(h: Harness) -> None:
    """SinkOptions.topic's result is each entry's topic (none for None, and by default), read
    back by readers and carried by received events."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    ids = await _publish_topics(h, backend, session)
    await h.sink(backend).send(h.event(session, 5, topic="ignored"))  # the default: no topic
    await h.sink(backend, topic=lambda event: "t-6").send(h.event(session, 6))
    records = await h.read_all(backend, stream)
    assert [r.topic for r in records] == [*_TOPICS, None, "t-6"], records
    assert [r.entry_id for r in records][: len(ids)] == ids
    async with h.subscriber(backend, group=None).subscribe(stream) as sub:
        received = await h.take(sub, len(records))
    assert [event.topic for event in received] == [*_TOPICS, None, "t-6"], received


@check("17")
async def subscriptions_filter_by_topic(h: Harness) -> None:
    """Groups and readers hand out only entries whose topic is the ``topic`` option exactly, or
    matches ``topic_pattern`` anywhere (an entry without topic has topic ""); ``topic`` wins;
    statistics count what was filtered out."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    await _publish_topics(h, backend, session)
    cases: list[tuple[dict[str, str], list[int]]] = [
        ({"topic": "ops"}, [0, 4]),
        ({"topic_pattern": "ops"}, [0, 3, 4]),
        ({"topic_pattern": "^$"}, [2]),
        ({"topic": "audit", "topic_pattern": "ops"}, [1]),
    ]
    for mode in h.reading_modes():
        for filters, expected in cases:
            options = {**mode, **filters}
            async with h.subscriber(backend, **options).subscribe(stream) as sub:
                got = await h.take(sub, len(expected))
                await h.nothing_within(sub, h.timing.claim * 4)
            indexes = [event.payload["index"] for event in got]
            assert indexes == expected, f"{options}: got {indexes}, expected {expected}"
            stats = sub.statistics()
            assert stats.filtered == len(_TOPICS) - len(expected), (options, stats)


@check("17", "consumer_groups")
async def groups_acknowledge_filtered_entries(h: Harness) -> None:
    """A group acknowledges the entries its topic filter drops (pulse leaves them pending for
    ever), in auto and manual mode: nothing stays pending once the application settled what it
    got."""
    backend = await h.backend()
    for manual in (False, True):
        session = h.session()
        stream = f"session/{session}"
        await _publish_topics(h, backend, session)
        group, consumer = h.name("group"), h.name("consumer")
        subscriber = h.subscriber(backend, group=group, consumer_name=consumer, topic="ops")
        if manual:
            async with subscriber.subscribe_manual(stream) as deliveries:
                for delivery in await h.take(deliveries, 2):
                    await delivery.ack()
                await h.nothing_within(deliveries, h.timing.claim * 4)
            stats = deliveries.statistics()
        else:
            async with subscriber.subscribe(stream) as events:
                await h.take(events, 2)
                await h.nothing_within(events, h.timing.claim * 4)
            stats = events.statistics()
        assert (stats.filtered, stats.acknowledged) == (3, 5), (manual, stats)
        if not h.capabilities.own_pending:
            continue  # the acknowledgements counted above are all this backend lets us see
        handle = await backend.open_group_consumer(stream, group, consumer, StartPosition.oldest())
        try:
            pending = await handle.read_own_pending(None, 100)
        finally:
            await handle.aclose()
        assert not pending, f"filtered entries left pending (manual={manual}): {pending}"
