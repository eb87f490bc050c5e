"""Subscriber behaviour under failures: retries, terminal errors, healing, error reporting."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from streamsink import (
    BackendUnavailableError,
    ConfigurationError,
    StreamEvent,
    StreamSink,
    StreamsinkError,
    SubscriberOptions,
    SubscriptionError,
)
from streamsink.backend import Backend
from streamsink.testing import FaultyBackend
from streamsink_memory import MemoryBackend, MemoryBroker
from tests.support.clock import FakeClock, advance, clocked_subscriber
from tests.support.subscriptions import subscriber as _subscriber

pytestmark = pytest.mark.anyio


def _faulty() -> FaultyBackend:
    """A memory backend to make unreachable: sinks write through its ``inner`` backend, so an
    outage reaches only the subscription's calls."""
    return FaultyBackend(MemoryBackend(MemoryBroker()))


async def test_reads_resume_after_an_outage() -> None:
    """While the backend is unreachable reads are retried with backoff, then resume losing nothing."""
    backend = _faulty()
    errors: list[StreamsinkError] = []
    sink = StreamSink(backend.inner)
    # Reads return every 20 ms: an idle subscription would otherwise wait out the outage in one
    # blocking read (the memory backend summarizes its pending entries, so reads block long).
    subscriber = _subscriber(backend, on_error=errors.append, max_block=0.02)
    async with subscriber.subscribe("session/s") as sub:
        await sink.send(StreamEvent("t", "r", "s", payload=0))
        first = await sub.__anext__()
        with backend.outage():
            before = len(backend.calls)
            await anyio.sleep(0.3)
            calls_while_down = len(backend.calls) - before
            await sink.send(StreamEvent("t", "r", "s", payload=1))
        assert calls_while_down >= 1, "the outage was never hit"
        with anyio.fail_after(5):
            second = await sub.__anext__()
        stats = sub.statistics()
    assert (first.payload, second.payload) == (0, 1)
    assert stats.retries >= 1
    assert all(isinstance(e, BackendUnavailableError) for e in errors)
    # Backoff: a 0.3 s outage costs a handful of attempts, not a hot loop.
    assert calls_while_down < 40, calls_while_down


async def test_outage_past_the_budget_ends_with_subscription_error() -> None:
    """A backend unreachable longer than reconnect_timeout ends iteration with SubscriptionError."""
    backend = _faulty()
    async with _subscriber(backend, reconnect_timeout=0.2, on_error=lambda e: None).subscribe(
        "session/s"
    ) as sub:
        backend.fail(times=None)
        with (
            anyio.fail_after(5),
            pytest.raises(SubscriptionError, match="reconnect_timeout") as caught,
        ):
            await sub.__anext__()
    assert isinstance(caught.value.__cause__, BackendUnavailableError)


async def test_acks_that_keep_failing_end_the_subscription() -> None:
    """Auto-mode acks that keep failing are a terminal SubscriptionError, not a silent loss."""
    backend = _faulty()
    sink = StreamSink(backend)
    await sink.send_many([StreamEvent("t", "r", "s", payload=i) for i in range(2)])
    async with _subscriber(backend, reconnect_timeout=0.2, on_error=lambda e: None).subscribe(
        "session/s"
    ) as sub:
        await sub.__anext__()
        await sub.__anext__()
        backend.fail(times=None)
        with anyio.fail_after(5), pytest.raises(SubscriptionError):
            await sub.__anext__()


async def test_vanished_group_is_recreated_with_backoff() -> None:
    """A group dropped under a consumer (like Redis FLUSHALL) is re-created and events flow again."""
    broker = MemoryBroker()
    backend = MemoryBackend(broker)
    sink = StreamSink(backend)
    errors: list[StreamsinkError] = []
    subscriber = _subscriber(backend, group="g", on_error=errors.append)
    async with subscriber.subscribe("session/s") as sub:
        await sink.send(StreamEvent("t", "r", "s", payload=1))
        assert (await sub.__anext__()).payload == 1
        broker.flush()
        await anyio.sleep(0.1)
        await sink.send(StreamEvent("t", "r", "s", payload=2))
        with anyio.fail_after(5):
            assert (await sub.__anext__()).payload == 2
        assert sub.statistics().groups_recreated >= 1
    assert errors, "group loss was not reported"


async def test_errors_without_a_callback_are_counted() -> None:
    """With no on_error (or one that raises), errors are logged and counted in dropped_errors."""
    backend = MemoryBackend(MemoryBroker())
    await backend.append([_raw("session/s", b"junk")])
    quiet = _subscriber(backend)

    def broken(error: StreamsinkError) -> None:
        raise RuntimeError("callback bug")

    loud = _subscriber(backend, group="other", on_error=broken)
    for subscriber in (quiet, loud):
        async with subscriber.subscribe("session/s") as sub:
            await StreamSink(backend).send(StreamEvent("t", "r", "s"))
            with anyio.fail_after(5):
                await sub.__anext__()
        assert subscriber.dropped_errors >= 1


def _raw(stream: str, payload: bytes) -> Any:
    from streamsink.backend import Entry

    return Entry(stream, "tool_start", payload)


async def test_custom_decoder_errors_become_decode_errors() -> None:
    """Anything a custom decoder raises is reported as a DecodeError on the delivery."""

    def decoder(data: bytes) -> StreamEvent:
        raise KeyError("boom")

    backend = MemoryBackend(MemoryBroker())
    await StreamSink(backend).send(StreamEvent("t", "r", "s"))
    async with _subscriber(backend, decoder=decoder).subscribe_manual("session/s") as sub:
        delivery = await sub.__anext__()
    assert delivery.event is None
    assert "KeyError" in str(delivery.decode_error)


async def test_iterating_outside_async_with_is_an_error() -> None:
    """A subscription used without `async with` says how to use it."""
    sub = _subscriber(MemoryBackend(MemoryBroker())).subscribe("session/s")
    with pytest.raises(SubscriptionError, match="async with"):
        await sub.__anext__()


async def test_closed_subscriber_refuses_new_subscriptions() -> None:
    """After aclose() a subscriber refuses subscribe(), and live subscriptions end cleanly."""
    backend = MemoryBackend(MemoryBroker())
    subscriber = _subscriber(backend)
    async with subscriber.subscribe("session/s") as sub:
        await subscriber.aclose()
        with anyio.fail_after(1):
            assert [e async for e in sub] == []
    with pytest.raises(SubscriptionError, match="closed subscriber"):
        subscriber.subscribe("session/s")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"buffer": 0}, "buffer=0"),
        ({"group": ""}, "group=''"),
        ({"ack_grace_period": 0}, "ack_grace_period=0"),
        ({"max_deliveries": -1}, "max_deliveries=-1"),
        ({"decoder": "json"}, "decoder='json'"),
        ({"start": "$"}, "start='\\$'"),
        ({"claim_interval": float("inf")}, "claim_interval=inf"),
    ],
)
def test_subscriber_options_are_validated(options: dict[str, Any], message: str) -> None:
    """Each bad option is refused with a message naming option, value and expectation."""
    with pytest.raises(ConfigurationError, match=message):
        SubscriberOptions(**options)


def test_bad_stream_ids_and_starts_are_refused() -> None:
    """subscribe() refuses stream ids pulse would refuse and start values that are not positions."""
    subscriber = _subscriber(MemoryBackend(MemoryBroker()))
    with pytest.raises(ConfigurationError, match="may not contain"):
        subscriber.subscribe("bad stream")
    with pytest.raises(ConfigurationError, match="start="):
        subscriber.subscribe("ok", start="0")  # type: ignore[arg-type]


async def test_reader_records_are_not_acked() -> None:
    """Fan-out readers never call ack and leave no group behind."""
    broker = MemoryBroker()
    backend: Backend = MemoryBackend(broker)
    await StreamSink(backend).send(StreamEvent("t", "r", "s"))
    async with _subscriber(backend, group=None).subscribe("session/s") as sub:
        await sub.__anext__()
    stats = broker.statistics()
    assert stats.groups == 0
    assert stats.consumers == 0


async def _another_consumer(
    backend: Backend, clock: FakeClock, options: dict[str, Any], seen: list[int]
) -> None:
    """Another consumer of the group on ``clock``: the payloads it gets go to ``seen``."""
    async with clocked_subscriber(backend, clock, **options).subscribe("session/s") as sub:
        async for event in sub:
            seen.append(event.payload)


async def test_slow_consumer_keeps_what_it_holds() -> None:
    """A slow auto-mode consumer that finishes everything it read within the grace period shares
    none of it with a consumer joining the group meanwhile (on a fake clock: no real waiting)."""
    clock = FakeClock()
    backend = MemoryBackend(MemoryBroker(clock=clock))
    await StreamSink(backend).send_many([StreamEvent("t", "r", "s", payload=i) for i in range(16)])
    # Both batches of 8 are read at once and finished within 16 x 0.1 s, inside the 2.5 s grace.
    options = {"group": "g", "ack_grace_period": 2.5, "buffer": 8, "fetch_count": 8}
    slow_seen: list[int] = []
    other_seen: list[int] = []

    with anyio.fail_after(10):
        async with (
            anyio.create_task_group() as tg,
            clocked_subscriber(backend, clock, **options).subscribe("session/s") as sub,
        ):
            async for event in sub:
                if not slow_seen:
                    tg.start_soon(_another_consumer, backend, clock, options, other_seen)
                slow_seen.append(event.payload)
                await advance(clock, 0.1)  # the other consumer's claim scans run meanwhile
                if len(slow_seen) == 16:
                    await advance(clock, 0.5)
                    tg.cancel_scope.cancel()
                    break
    assert slow_seen == list(range(16))
    assert other_seen == []


async def test_a_worker_pool_can_share_one_subscription() -> None:
    """Many tasks iterating one manual subscription get every event exactly once, and together
    read no further ahead than one subscription would."""
    backend = MemoryBackend(MemoryBroker())
    await StreamSink(backend).send_many([StreamEvent("t", "r", "s", payload=i) for i in range(500)])
    seen: list[int] = []
    async with _subscriber(backend, buffer=20).subscribe_manual("session/s") as sub:

        async def worker() -> None:
            async for delivery in sub:
                assert delivery.event is not None
                seen.append(delivery.event.payload)
                # read but not yet taken: at most a batch being taken and one being handed over
                assert sub.statistics().received - len(seen) <= 20 + 20
                await anyio.lowlevel.checkpoint()
                await delivery.ack()
                if len(seen) == 500:
                    await sub.aclose()

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for _ in range(16):
                    tg.start_soon(worker)
    assert sorted(seen) == list(range(500))


async def test_read_ahead_of_a_slow_but_working_consumer_is_not_redelivered() -> None:
    """Events waiting in a slow consumer's buffer longer than the grace period keep their lease
    while the application makes progress, so nothing is redelivered or dead-lettered (on a fake
    clock: no real waiting)."""
    clock = FakeClock()
    backend = MemoryBackend(MemoryBroker(clock=clock))
    await StreamSink(backend).send_many([StreamEvent("t", "r", "s", payload=i) for i in range(24)])
    # 16 events read ahead at 0.1 s each wait up to ~1.6 s: four times the 0.4 s grace period.
    options = {"group": "g", "ack_grace_period": 0.4, "buffer": 8, "max_deliveries": 2}
    seen: list[int] = []
    other_seen: list[int] = []

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(_another_consumer, backend, clock, options, other_seen)
            async with clocked_subscriber(backend, clock, **options).subscribe("session/s") as sub:
                async for event in sub:
                    seen.append(event.payload)
                    await advance(clock, 0.1)
                    if len(seen) + len(other_seen) >= 24:
                        break
                stats = sub.statistics()
            await advance(clock, 0.5)
            tg.cancel_scope.cancel()
    assert sorted(seen + other_seen) == list(range(24)), f"{seen} {other_seen} {stats}"
    assert stats.redelivered == 0
    assert stats.dead_lettered == 0


async def test_finished_events_are_acked_while_the_pump_waits_for_more() -> None:
    """Auto mode: once the application has finished everything it was given and asks for more,
    its events are acknowledged at once, not when the pump's blocked read next returns."""
    broker = MemoryBroker()
    backend = MemoryBackend(broker)
    await StreamSink(backend).send_many([StreamEvent("t", "r", "s", payload=i) for i in range(3)])
    options = {"max_block": 30.0, "claim_interval": 30.0}
    async with _subscriber(backend, **options).subscribe("session/s") as sub:
        for _ in range(3):
            await sub.__anext__()
        async with anyio.create_task_group() as tg:
            tg.start_soon(sub.__anext__)  # waits: the stream holds nothing more
            with anyio.fail_after(2):
                while broker.pending("session/s", sub.group or ""):  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
        assert sub.statistics().acknowledged == 3
