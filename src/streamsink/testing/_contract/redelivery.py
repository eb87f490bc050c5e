"""Rule 10 of docs/contract.md: unacknowledged entries are redelivered; a restarted consumer
gets its own pending entries first."""

from __future__ import annotations

from ...backend import StartPosition
from .._harness import Harness
from ._registry import check

__all__: list[str] = []


@check("10", "consumer_groups", "redelivery")
async def unacked_entries_are_redelivered(h: Harness) -> None:
    """An entry not acknowledged within ack_grace_period is delivered again with its count raised."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    group = h.name("g")
    (sent,) = await h.publish(backend, session, 1)
    async with h.subscriber(backend, group=group).subscribe_manual(stream) as first:
        (held,) = await h.take(first, 1)
        assert held.delivery_count == 1
        second_subscriber = h.subscriber(backend, group=group, start=StartPosition.newest())
        async with second_subscriber.subscribe_manual(stream) as second:
            again = await h.first_of(first, second)
            assert (again.entry_id, again.delivery_count) == (sent.entry_id, 2)
            await again.ack()


@check("10", "consumer_groups", "own_pending")
async def restarted_consumer_gets_its_pending_first(h: Harness) -> None:
    """A consumer restarting under its name first gets back the entries it had not acknowledged."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    options = {
        "group": h.name("g"),
        "consumer_name": h.name("c"),
        "ack_grace_period": h.timing.long_grace,
    }
    ids = [p.entry_id for p in await h.publish(backend, session, 2)]
    async with h.subscriber(backend, **options).subscribe_manual(stream) as sub:
        assert [d.entry_id for d in await h.take(sub, 2)] == ids
    (later,) = await h.publish(backend, session, 1, first=5)
    async with h.subscriber(backend, **options).subscribe_manual(stream) as sub:
        again = await h.take(sub, 3)
        assert [(d.entry_id, d.delivery_count) for d in again] == [
            (ids[0], 2),
            (ids[1], 2),
            (later.entry_id, 1),
        ]
        for delivery in again:
            await delivery.ack()
