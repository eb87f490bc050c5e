"""Helpers for tests of time rules (leases, idle claims) that must not sleep, on the kit's
:class:`streamsink.testing.FakeClock`."""

from __future__ import annotations

from typing import Any

import anyio

from streamsink import StartPosition, StreamSubscriber, SubscriberOptions
from streamsink.testing import FakeClock

__all__ = ["CLAIM_INTERVAL", "FakeClock", "advance", "clocked_subscriber"]


#: the claim interval of subscriptions on a fake clock: it is also how often (in real time) their
#: pumps wake to look at the clock, so keep it short
CLAIM_INTERVAL = 0.005


async def advance(clock: FakeClock, seconds: float) -> None:
    """Move ``clock`` forward, then give background tasks (pumps, claim scans, acks) a few of
    their real-time wake-ups to act on the new time. No test waits out a grace period."""
    clock.advance(seconds)
    await anyio.sleep(4 * CLAIM_INTERVAL)


def clocked_subscriber(backend: Any, clock: FakeClock, **options: Any) -> StreamSubscriber:
    """A subscriber from the oldest entry whose leases and claim scans run on ``clock`` (give
    the memory broker the same clock, so idle times agree), swallowing the errors it reports
    unless ``on_error`` is given."""
    options.setdefault("start", StartPosition.oldest())
    options.setdefault("claim_interval", CLAIM_INTERVAL)
    options.setdefault("on_error", lambda error: None)
    return StreamSubscriber(backend, SubscriberOptions(**options), clock=clock)
