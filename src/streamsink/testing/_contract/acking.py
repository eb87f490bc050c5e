"""Rules 8-9 of docs/contract.md: auto mode acknowledges once the application is done;
manual mode's ack, nack, term and in_progress."""

from __future__ import annotations

import anyio

from ..._deadletter import DEAD_LETTER_EVENT, decode_dead_letter
from ..._exceptions import (
    AckError,
)
from ...backend import StartPosition
from .._harness import Harness
from ._registry import check

__all__: list[str] = []


@check("8", "consumer_groups", "redelivery")
async def exception_leaves_event_pending(h: Harness) -> None:
    """Auto mode acks an event only once the application is done with it: leaving the loop by an
    exception leaves the current and the buffered events pending, redelivered with count 2."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    group = h.name("g")
    ids = [p.entry_id for p in await h.publish(backend, session, 3)]

    class HandlerFailed(Exception):
        pass

    try:
        async with h.subscriber(backend, group=group, buffer=8).subscribe(stream) as sub:
            async for event in sub:
                if event.entry_id == ids[1]:
                    raise HandlerFailed
    except HandlerFailed:
        pass
    async with h.subscriber(backend, group=group).subscribe_manual(stream) as manual:
        redelivered = await h.take(manual, 2)
        assert [(d.entry_id, d.delivery_count) for d in redelivered] == [(ids[1], 2), (ids[2], 2)]
        for delivery in redelivered:
            await delivery.ack()
        await h.nothing_within(manual, h.timing.grace * 3)


@check("8", "consumer_groups", "redelivery")
async def leaving_normally_acks(h: Harness) -> None:
    """Leaving the loop normally (break) acknowledges the current event."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    group = h.name("g")
    await h.publish(backend, session, 1)
    async with h.subscriber(backend, group=group).subscribe(stream) as sub:
        async for _event in sub:
            break
    async with h.subscriber(backend, group=group).subscribe(stream) as sub:
        await h.nothing_within(sub, h.timing.grace * 3)


@check("9", "consumer_groups", "redelivery")
async def manual_ack_is_idempotent(h: Harness) -> None:
    """ack() twice is fine and an acked entry is never redelivered; ack after the subscription
    closed raises AckError and the entry stays pending."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    group = h.name("g")
    ids = [p.entry_id for p in await h.publish(backend, session, 2)]
    async with h.subscriber(backend, group=group).subscribe_manual(stream) as sub:
        first, second = await h.take(sub, 2)
        await first.ack()
        await first.ack()
        assert first.settled and first.delivery_count == 1
    try:
        await second.ack()
    except AckError as exc:
        assert "closed" in str(exc)
    else:
        raise AssertionError("ack after the subscription closed did not raise AckError")
    async with h.subscriber(backend, group=group).subscribe_manual(stream) as sub:
        (again,) = await h.take(sub, 1)
        assert (again.entry_id, again.delivery_count) == (ids[1], 2)
        await again.ack()
        await h.nothing_within(sub, h.timing.grace * 3)


@check("9", "consumer_groups", "redelivery")
async def nack_redelivers_now(h: Harness) -> None:
    """nack() makes the entry available again at once, with delivery count 2."""
    backend = await h.backend()
    session = h.session()
    (sent,) = await h.publish(backend, session, 1)
    subscriber = h.subscriber(backend, ack_grace_period=h.timing.long_grace)
    async with subscriber.subscribe_manual(f"session/{session}") as sub:
        (first,) = await h.take(sub, 1)
        await first.nack()
        with anyio.fail_after(2):
            (again,) = await h.take(sub, 1)
        assert (again.entry_id, again.delivery_count) == (sent.entry_id, 2)
        await again.ack()


@check("9", "consumer_groups", "redelivery")
async def late_nack_leaves_the_newer_delivery(h: Harness) -> None:
    """nack() of a delivery held past the grace period, after its entry came again, does not
    bring the entry once more; nack() of the newer delivery does."""
    backend = await h.backend()
    session = h.session()
    (sent,) = await h.publish(backend, session, 1)
    subscriber = h.subscriber(backend)
    async with subscriber.subscribe_manual(f"session/{session}") as sub:
        first, second = await h.take(sub, 2)  # the second came after the grace period
        assert (first.delivery_count, second.delivery_count) == (1, 2)
        await first.nack()
        # Short of the second's own grace period, however slow the machine: a nack that
        # landed on the second brings it within a claim interval (or at once).
        await h.nothing_within(sub, h.timing.grace / 3)
        await second.nack()
        (third,) = await h.take(sub, 1)
        assert (third.entry_id, third.delivery_count) == (sent.entry_id, 3)
        await third.ack()


@check("9", "consumer_groups", "fan_out")
async def term_dead_letters_with_provenance(h: Harness) -> None:
    """term(reason) moves the entry to the dead-letter stream with its provenance and acks it."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    (sent,) = await h.publish(backend, session, 1)
    subscriber = h.subscriber(backend)
    async with subscriber.subscribe_manual(stream) as sub:
        (delivery,) = await h.take(sub, 1)
        await delivery.term("tool result rejected")
        await h.nothing_within(sub, h.timing.grace * 3)
        consumer = sub.consumer
    (record,) = await h.read_all(backend, f"{stream}:dlq")
    assert record.name == DEAD_LETTER_EVENT
    letter = decode_dead_letter(record.payload or b"")
    assert (letter.origin_stream, letter.entry_id, letter.group, letter.consumer) == (
        stream,
        sent.entry_id,
        subscriber.options.group,
        consumer,
    )
    assert letter.attempts == 1 and letter.reason == "tool result rejected"
    assert letter.event_name == "tool_start"
    assert letter.payload == delivery.raw_payload


@check("9", "consumer_groups", "redelivery")
async def in_progress_renews_the_lease(h: Harness) -> None:
    """in_progress() keeps a slow handler's entry from being redelivered past the grace period."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    group = h.name("g")
    await h.publish(backend, session, 1)
    async with h.subscriber(backend, group=group).subscribe_manual(stream) as slow:
        (delivery,) = await h.take(slow, 1)
        # The second consumer joins only now, so it cannot have been the one to read the entry.
        other_subscriber = h.subscriber(backend, group=group, start=StartPosition.newest())
        async with other_subscriber.subscribe_manual(stream) as other:

            async def keep_alive() -> None:
                for _ in range(12):
                    await delivery.in_progress()
                    await anyio.sleep(h.timing.grace / 3)

            async with anyio.create_task_group() as tg:
                tg.start_soon(keep_alive)
                await h.nothing_within(other, h.timing.grace * 4)
                tg.cancel_scope.cancel()
        await delivery.ack()
