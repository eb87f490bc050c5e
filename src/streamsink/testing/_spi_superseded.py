"""SPI checks of settling a superseded delivery: a nack or touch naming a delivery whose entry
was redelivered meanwhile (to this consumer or another) leaves the newer delivery alone.

Each check holds delivery 1 of an entry past the grace period, takes delivery 2 (claimed, or
handed out again by ``read_new`` where the backend redelivers by itself), then settles delivery
1 late, as an application still on it would.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio

from ..backend import Backend, DeliveryKey, GroupConsumer, Record
from ._spi import OLDEST, SpiHarness, counts, keys, spi_check

__all__: list[str] = []

_REDELIVERY = ("consumer_groups", "redelivery")


async def _open(h: SpiHarness, backend: Backend, stream: str, *names: str) -> list[GroupConsumer]:
    group = h.name("group")
    grace = h.timing.grace
    return [
        await backend.open_group_consumer(stream, group, name, OLDEST, ack_grace_period=grace)
        for name in names
    ]


async def _redelivery(h: SpiHarness, consumer: GroupConsumer) -> Sequence[Record]:
    """The next redelivery to ``consumer``, waiting up to the timing's timeout for it."""
    got: Sequence[Record] = []
    with anyio.move_on_after(h.timing.timeout):
        while not got:
            got = await _within(h, consumer, h.timing.claim)
    return got


async def _within(h: SpiHarness, consumer: GroupConsumer, wait: float) -> Sequence[Record]:
    """What the group redelivers to ``consumer`` now: a claim of entries idle for the grace
    period, or a read waiting up to ``wait`` seconds where the backend redelivers by itself."""
    if h.capabilities.claims:
        return await consumer.claim_idle(h.timing.grace, 10)
    return await consumer.read_new(10, wait)


async def _nacked(h: SpiHarness, consumer: GroupConsumer) -> Sequence[Record]:
    """What a nack made due for redelivery, as ``consumer`` gets it now: a claim under a grace
    period no check waits for (only a nacked entry is idle that long, however slow the machine
    is), or a short read where the backend redelivers by itself (a nack redelivers at once)."""
    if h.capabilities.claims:
        return await consumer.claim_idle(h.timing.long_grace, 10)
    return await consumer.read_new(10, h.timing.grace / 2)


async def _superseded(h: SpiHarness, consumer: GroupConsumer, sent: str) -> list[DeliveryKey]:
    """Read ``sent``, hold it past the grace period and take it again: the keys of delivery 1
    (superseded) and delivery 2."""
    first = await consumer.read_new(1, 0)
    assert counts(first) == [(sent, 1)], counts(first)
    await h.settle_idle()
    second = await _redelivery(h, consumer)
    assert counts(second) == [(sent, 2)], f"redelivered {counts(second)}, not delivery 2"
    return [*keys(first), *keys(second)]


@spi_check("nack", "read_new", requires=_REDELIVERY)
async def nack_of_a_superseded_delivery_changes_nothing(h: SpiHarness) -> None:
    """A nack naming a superseded delivery does not redeliver the entry (the newer delivery
    keeps it, with its idle time, whoever holds it); a nack of the newer delivery then
    redelivers it at once."""
    backend = await h.backend()
    stream = h.stream()
    a, b = await _open(h, backend, stream, "a", "b")
    (sent,) = await h.append(backend, stream, 1)
    old, new = await _superseded(h, a, sent)
    await a.nack([old])
    early = await _nacked(h, b)
    assert early == [], (
        f"a nack of {old!r} redelivered {counts(early)}: it acted on {new!r}, the newer delivery"
    )
    await a.nack([new])
    again = await _nacked(h, b)
    assert counts(again) == [(sent, 3)], f"a nack of {new!r} redelivered {counts(again)}"
    await b.ack([sent])
    if h.capabilities.claims:
        # Superseded by another consumer's claim: a late nack neither frees nor takes it back.
        (other,) = await h.append(backend, stream, 1)
        first = await a.read_new(1, 0)
        await h.settle_idle()
        assert counts(await b.claim_idle(h.timing.grace, 10)) == [(other, 2)]
        await a.nack(keys(first))
        taken = await _nacked(h, a)
        assert taken == [], f"a nack of {keys(first)} freed b's delivery: claimed {counts(taken)}"
        await b.ack([other])


@spi_check("touch", "read_new", requires=_REDELIVERY)
async def touch_of_a_superseded_delivery_changes_nothing(h: SpiHarness) -> None:
    """A touch naming a superseded delivery does not restart the newer delivery's grace
    period: the newer one is redelivered once its own grace period is over."""
    backend = await h.backend()
    stream = h.stream()
    (a,) = await _open(h, backend, stream, "a")
    (sent,) = await h.append(backend, stream, 1)
    grace = h.timing.grace
    old, new = await _superseded(h, a, sent)
    await anyio.sleep(grace * 0.6)
    await a.touch([old])
    await anyio.sleep(grace * 0.6)
    third = await _within(h, a, grace / 4)
    assert counts(third) == [(sent, 3)], (
        f"{new!r} was not redelivered {grace * 1.2:.2f} s after it was made (grace period "
        f"{grace} s; redelivered {counts(third)}): the touch of {old!r} renewed it"
    )
    await a.ack([sent])
