"""SubscriberOptions.renew_while_handling: a manual delivery's lease is kept renewed while the
application holds it, up to the bound; the pure bookkeeping on a fake clock, then on memory://."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import pytest

import streamsink
from streamsink import StartPosition, StreamEvent, SubscriberOptions
from streamsink._consuming._handling import HandlingLeases
from streamsink.backend import DeliveryKey
from streamsink.testing import FakeClock

OLDEST = StartPosition.oldest()


def test_due_every_half_grace_period_until_the_limit() -> None:
    clock = FakeClock(100.0)
    leases = HandlingLeases(grace=10, limit=30, expiry=9, clock=clock)
    leases.handed(DeliveryKey("1-0", 2))
    assert leases.due(clock()) == []
    assert leases.next_due(clock()) == 105.0
    clock.advance(5)
    (due,) = leases.due(clock())
    assert (due.key, due.key.delivery_count) == ("1-0", 2)
    due.renewed_at = clock()  # what ReadAheadLeases.renewed does
    for _ in range(4):  # renewed at 105, 110, ..., 125: the last one within the 30 s limit
        clock.advance(5)
        (due,) = leases.due(clock())
        due.renewed_at = clock()
    clock.advance(5)  # 130: a renewal now would hold the lease past the limit
    assert leases.due(clock()) == []
    assert leases.next_due(clock()) == float("inf")


def test_a_lease_that_ran_out_is_never_renewed_and_settled_ones_go() -> None:
    clock = FakeClock(0.0)
    leases = HandlingLeases(grace=10, limit=100, expiry=9, clock=clock)
    leases.handed(DeliveryKey("1-0", 1), renewed_at=-4.0)  # its batch was renewed 4 s ago
    assert leases.next_due(clock()) == 1.0
    clock.advance(6)  # 10 s since the renewal: past the expiry, another consumer may have it
    assert leases.due(clock()) == []
    leases.handed(DeliveryKey("2-0", 1))
    leases.settled("2-0")
    leases.settled("3-0")  # never handed: nothing happens
    assert len(leases) == 1


pytestmark_anyio = pytest.mark.anyio


async def _race(renew: float | None, hold: float, url: str | None = None) -> tuple[list[int], int]:
    """A handler holds one delivery ``hold`` seconds while another consumer of the group keeps
    reading; returns the delivery counts the other consumer saw, and the holder's."""
    url = url or f"memory://renew-{uuid.uuid4().hex}"
    grace = 0.4
    options = SubscriberOptions(
        group="g", ack_grace_period=grace, claim_interval=0.05, renew_while_handling=renew
    )
    async with streamsink.connect(url) as streams:
        session = f"s-{uuid.uuid4().hex}"
        await streams.sink.send(StreamEvent("usage", "run-1", session))
        other_saw: list[int] = []
        holder = streams.new_subscriber(options, consumer_name="holder")
        other = streams.new_subscriber(options, consumer_name="other")
        async with holder.subscribe_manual(f"session/{session}", start=OLDEST) as mine:
            delivery = await anext(aiter(mine))
            async with other.subscribe_manual(f"session/{session}", start=OLDEST) as theirs:
                with anyio.move_on_after(hold):
                    async for late in theirs:
                        other_saw.append(late.delivery_count)
                        await late.ack()
            await delivery.ack()
        return other_saw, delivery.delivery_count


@pytestmark_anyio
async def test_a_long_handler_keeps_its_delivery() -> None:
    other_saw, count = await _race(renew=5.0, hold=1.5)  # ~4 grace periods
    assert (other_saw, count) == ([], 1)


@pytestmark_anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_on_redis_too(redis_url: str) -> None:
    """On Redis the renewals are XCLAIMs of this consumer's own delivery (touch by key)."""
    other_saw, count = await _race(renew=5.0, hold=1.5, url=redis_url)
    assert (other_saw, count) == ([], 1)


@pytestmark_anyio
async def test_without_it_the_group_redelivers_mid_way() -> None:
    other_saw, _ = await _race(renew=None, hold=1.5)
    # The control, so the check above can fail: redelivered (the holder's own subscription may
    # have claimed it once before the other did, hence a count of 2 or more).
    assert other_saw
    assert min(other_saw) >= 2


@pytestmark_anyio
async def test_past_the_bound_a_hung_handler_loses_its_lease() -> None:
    other_saw, _ = await _race(renew=0.5, hold=2.0)
    assert other_saw
    assert min(other_saw) >= 2


@pytest.mark.parametrize("bad", [0, -1.0, True, "5", float("nan")])
def test_bad_values_are_named(bad: Any) -> None:
    with pytest.raises(streamsink.ConfigurationError, match="renew_while_handling"):
        SubscriberOptions(renew_while_handling=bad)
