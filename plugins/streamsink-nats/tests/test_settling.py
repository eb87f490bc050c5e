"""Settling a superseded delivery on JetStream, where the newer delivery went to another
consumer of the group: this consumer never saw it, so only the AckWait of its own delivery
tells it that a late ``-NAK`` or ``+WPI`` would land on the newer one (the kit's checks cover a
newer delivery to the same consumer)."""

from __future__ import annotations

import uuid

import anyio
import pytest
from streamsink.backend import DeliveryKey, Entry, GroupConsumer, Record, StartPosition

from streamsink_nats import NatsBackend

pytestmark = pytest.mark.anyio

GRACE = 0.3


Held = tuple[NatsBackend, GroupConsumer, GroupConsumer, Record, Record]


async def _held_past_ackwait(nats_url: str) -> Held:
    """Consumer ``a`` holds delivery 1 past AckWait, and ``b`` got delivery 2."""
    backend = await NatsBackend.connect(nats_url)
    stream = f"session/late-{uuid.uuid4().hex[:8]}"
    a, b = [
        await backend.open_group_consumer(
            stream, "g", name, StartPosition.oldest(), ack_grace_period=GRACE
        )
        for name in ("a", "b")
    ]
    await backend.append([Entry(stream, "n", b"{}")])
    (first,) = await a.read_new(1, 0)
    await anyio.sleep(GRACE * 1.2)
    (second,) = await b.read_new(1, 5)
    assert second.delivery_count == 2
    return backend, a, b, first, second


async def test_a_late_nack_leaves_the_delivery_another_consumer_got(nats_url: str) -> None:
    backend, a, b, first, second = await _held_past_ackwait(nats_url)
    try:
        await a.nack([DeliveryKey.of(first)])
        early = await b.read_new(10, GRACE / 2)
        assert early == [], f"a late nack redelivered {early}"
        await b.nack([DeliveryKey.of(second)])
        (again,) = await b.read_new(10, GRACE / 2)
        assert again.delivery_count == 3
        await a.ack([first.entry_id])  # acks the entry, as any ack
        assert await b.read_new(10, GRACE * 1.5) == []
    finally:
        await backend.aclose()


async def test_a_late_touch_leaves_the_delivery_another_consumer_got(nats_url: str) -> None:
    backend, a, b, first, _ = await _held_past_ackwait(nats_url)
    try:
        await anyio.sleep(GRACE * 0.6)
        await a.touch([DeliveryKey.of(first)])
        await anyio.sleep(GRACE * 0.6)
        redelivered = await b.read_new(10, GRACE / 4)
        assert [r.delivery_count for r in redelivered] == [3], "the late touch renewed it"
    finally:
        await backend.aclose()
