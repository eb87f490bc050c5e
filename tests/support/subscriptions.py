"""Small helpers for tests that drive subscriptions by hand."""

from __future__ import annotations

from typing import Any, TypeVar

import anyio

from streamsink import StartPosition, StreamSubscriber, SubscriberOptions, Subscription

__all__ = ["subscriber", "take"]

T = TypeVar("T")


def subscriber(backend: Any, *, quiet: bool = False, **options: Any) -> StreamSubscriber:
    """A subscriber from the oldest entry with a short claim interval; ``quiet`` swallows the
    errors it reports (leave it off to test error reporting itself)."""
    options.setdefault("start", StartPosition.oldest())
    options.setdefault("claim_interval", 0.02)
    if quiet:
        options.setdefault("on_error", lambda error: None)
    return StreamSubscriber(backend, SubscriberOptions(**options))


async def take(subscription: Subscription[T], count: int, within: float = 5.0) -> list[T]:
    """The next ``count`` items (fewer if the subscription ends), failing after ``within`` s."""
    items: list[T] = []
    with anyio.fail_after(within):
        async for item in subscription:
            items.append(item)
            if len(items) == count:
                break
    return items
