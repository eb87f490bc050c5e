"""The consumer engine's settings and lifecycle: each resolved in one place, checked here."""

from __future__ import annotations

from typing import Any

import anyio
import attrs
import pytest

from streamsink import (
    StartPosition,
    StreamEvent,
    StreamSink,
    StreamSubscriber,
    SubscriberOptions,
    SubscriptionError,
)
from streamsink._consuming import claim_interval_of, resolve_settings
from streamsink._consuming._lifecycle import Lifecycle
from streamsink.backend import Capabilities
from streamsink.testing import FaultyBackend
from streamsink_memory import MemoryBackend, MemoryBroker

pytestmark = pytest.mark.anyio


class _Declaring(MemoryBackend):
    """A memory backend that declares ``redelivery`` (and ``pending_summary``) as given."""

    def __init__(self, *, redelivery: bool, summary: bool = True) -> None:
        super().__init__(MemoryBroker())
        self._redelivery = redelivery
        self._summary = summary

    @property
    def capabilities(self) -> Capabilities:
        return attrs.evolve(
            super().capabilities, redelivery=self._redelivery, pending_summary=self._summary
        )


def _options(**overrides: Any) -> SubscriberOptions:
    return SubscriberOptions(start=StartPosition.oldest(), **overrides)


async def test_a_backend_without_redelivery_gets_no_claims() -> None:
    """Nothing is ever redelivered there, so the pump neither scans for idle entries nor renews
    the leases of its read-ahead."""
    backend = FaultyBackend(_Declaring(redelivery=False))  # counts the calls made
    await StreamSink(backend).send_many([StreamEvent("t", "r", "s", payload=i) for i in range(5)])
    subscriber = StreamSubscriber(backend, _options(group="g", claim_interval=0.005, buffer=2))
    seen: list[int] = []
    async with subscriber.subscribe("session/s") as events:
        with anyio.fail_after(5):
            async for event in events:
                seen.append(event.payload)
                await anyio.sleep(0.02)  # several claim intervals per event
                if len(seen) == 5:
                    break
    assert seen == list(range(5))
    assert backend.count("read_new") > 0
    assert (backend.count("claim_idle"), backend.count("touch")) == (0, 0), backend.calls


async def test_a_backend_with_redelivery_is_scanned() -> None:
    """The other side of the test above: the same subscription on a backend that redelivers,
    and declares no ``pending_summary``, scans every claim interval, idle or not."""
    backend = FaultyBackend(_Declaring(redelivery=True, summary=False))  # counts the calls made
    subscriber = StreamSubscriber(backend, _options(group="g", claim_interval=0.005))
    async with subscriber.subscribe("session/s"):
        with anyio.fail_after(5):
            while backend.count("claim_idle") < 3:  # noqa: ASYNC110
                await anyio.sleep(0.005)
    assert backend.count("pending_summary") == 0


async def test_a_backend_with_summaries_is_scanned_only_when_something_can_be_idle() -> None:
    """With ``pending_summary``, an idle subscription asks for summaries, not claims; an entry
    left pending by a consumer that went away is claimed once it is idle past the grace
    period, and handed to the subscription."""
    inner = _Declaring(redelivery=True)
    backend = FaultyBackend(inner)
    options = _options(group="g", claim_interval=0.01, ack_grace_period=0.3)
    subscriber = StreamSubscriber(backend, options)
    async with subscriber.subscribe("session/idle"):
        with anyio.fail_after(5):
            while backend.count("pending_summary") < 3:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        assert backend.count("claim_idle") == 0
    gone = await inner.open_group_consumer("session/s", "g", "gone", StartPosition.oldest())
    await StreamSink(backend).send(StreamEvent("t", "r", "s", payload=1))
    (taken,) = await gone.read_new(10, 0)
    async with subscriber.subscribe_manual("session/s") as deliveries:
        with anyio.fail_after(5):
            delivery = await deliveries.__anext__()
        assert (delivery.entry_id, delivery.delivery_count) == (taken.entry_id, 2)
        # One claim, and one more when it came back full (its first read asks for one entry).
        assert 1 <= backend.count("claim_idle") <= 2
        await delivery.ack()


def test_settings_are_resolved_once_from_options_and_backend() -> None:
    backend = MemoryBackend(MemoryBroker())

    def settings(**overrides: Any) -> Any:
        options = _options(**overrides)
        return resolve_settings(
            options,
            backend,
            "session/s",
            consumer_name="c",
            claim_interval=claim_interval_of(options, backend),
            manual=False,
            letters=False,
        )

    default = settings()
    # The memory backend summarizes its pending entries: reads block long, claims are shared.
    assert (default.fetch_count, default.claim_interval, default.max_block) == (64, 0.5, 60.0)
    assert default.claims
    assert default.summaries
    assert default.dead_letter_stream == "session/s:dlq"
    tuned = settings(buffer=8, fetch_count=4, claim_interval=0.25, max_block=2.0)
    assert (tuned.fetch_count, tuned.claim_interval, tuned.max_block) == (4, 0.25, 2.0)
    assert settings(buffer=8).fetch_count == 8  # fetch_count defaults to buffer
    reader = settings(group=None)
    assert (reader.claims, reader.max_block) == (False, 5.0)


def test_the_claim_interval_is_the_option_else_the_backends_else_pulses() -> None:
    class Suggesting(MemoryBackend):
        @property
        def capabilities(self) -> Capabilities:
            return attrs.evolve(super().capabilities, claim_interval=0.125)

    class Undeclared(MemoryBackend):
        claim_interval = 0.125  # an attribute is no declaration: only Capabilities counts

    suggesting = Suggesting(MemoryBroker())
    assert claim_interval_of(_options(), Undeclared(MemoryBroker())) == 0.5
    assert claim_interval_of(_options(), suggesting) == 0.125
    assert claim_interval_of(_options(claim_interval=2.0), suggesting) == 2.0
    assert claim_interval_of(_options(), MemoryBackend(MemoryBroker())) == 0.5


async def test_the_lifecycle_is_new_open_stopping_closed() -> None:
    backend = MemoryBackend(MemoryBroker())
    subscription = StreamSubscriber(backend, _options()).subscribe("session/s")
    assert subscription._state is Lifecycle.NEW
    async with subscription:
        assert subscription._state is Lifecycle.OPEN
        await subscription.aclose()
        assert subscription._state is Lifecycle.STOPPING
        with pytest.raises(StopAsyncIteration):
            await subscription.__anext__()
    assert subscription._state is Lifecycle.CLOSED
    with pytest.raises(SubscriptionError, match="entered only once"):
        await subscription.__aenter__()
    with pytest.raises(SubscriptionError, match="inside `async with"):
        await subscription.__anext__()


async def test_closing_before_entering_ends_iteration_at_once() -> None:
    backend = MemoryBackend(MemoryBroker())
    await StreamSink(backend).send(StreamEvent("t", "r", "s", payload=1))
    subscription = StreamSubscriber(backend, _options()).subscribe("session/s")
    await subscription.aclose()
    async with subscription:
        with anyio.fail_after(5):
            assert [event async for event in subscription] == []
