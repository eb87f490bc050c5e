"""streamsink on the same work, on any backend URL (``redis://``, ``memory://``, ``fakeredis://``).

Subscriptions use ``SubscriberOptions(group="bench", buffer=100)``: reads of 100 entries, as the
raw consumers' ``COUNT 100``. Everything else is the default (``maxlen`` 1000 on writes).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from streamsink import (
    PublishedEvent,
    StartPosition,
    StreamSink,
    StreamSubscriber,
    SubscriberOptions,
    open_backend,
)
from streamsink.backend import Backend, Entry
from streamsink.backend.redis_ids import parse_entry_id

from . import _workload as wl
from ._env import Env
from ._measure import Latency, Rate, pace

__all__ = [
    "consume",
    "e2e",
    "latency",
    "manual_concurrent",
    "send_batch",
    "send_concurrent",
    "send_seq",
]

CONCURRENCY = 64
BATCH = 100
OPTIONS = SubscriberOptions(group=wl.GROUP, buffer=BATCH)


@asynccontextmanager
async def _backend(env: Env, backend: str, **query: object) -> AsyncIterator[Backend]:
    opened = await open_backend(env.url(backend, **query))
    try:
        yield opened
    finally:
        await opened.aclose()


async def send_seq(env: Env, backend: str) -> Rate:
    n = env.config.scaled(env.config.send_seq, backend)
    session = env.session()
    events = wl.events(session)
    async with _backend(env, backend) as opened:
        sink = StreamSink(opened)
        for event in events[:20]:
            await sink.send(event)
        start = time.perf_counter()
        for i in range(n):
            await sink.send(events[i % len(events)])
        elapsed = time.perf_counter() - start
        await opened.destroy(f"session/{session}")
    return Rate(n, elapsed)


async def send_batch(env: Env, backend: str) -> Rate:
    n = env.config.scaled(env.config.send_batch, backend) // BATCH * BATCH
    session = env.session()
    events = wl.events(session)
    async with _backend(env, backend) as opened:
        sink = StreamSink(opened)
        await sink.send_many(events[:20])
        start = time.perf_counter()
        for _ in range(n // BATCH):
            await sink.send_many(events)
        elapsed = time.perf_counter() - start
        await opened.destroy(f"session/{session}")
    return Rate(n, elapsed)


async def send_concurrent(env: Env, backend: str) -> Rate:
    """64 tasks, each awaiting ``send`` in a loop; afterwards (untimed) every task's entry ids
    are checked to be its own, distinct and increasing."""
    per_task = env.config.scaled(env.config.send_concurrent, backend) // CONCURRENCY
    session = env.session()
    events = wl.events(session)
    published: list[list[PublishedEvent]] = [[] for _ in range(CONCURRENCY)]
    async with _backend(env, backend) as opened:
        sink = StreamSink(opened)

        async def task(index: int) -> None:
            mine = published[index]
            for i in range(per_task):
                mine.append(await sink.send(events[(index + i) % len(events)]))

        for event in events[:20]:
            await sink.send(event)
        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for index in range(CONCURRENCY):
                tg.start_soon(task, index)
        elapsed = time.perf_counter() - start
        await opened.destroy(f"session/{session}")
    ids = [parse_entry_id(p.entry_id) for mine in published for p in mine]
    assert len(set(ids)) == len(ids), "two sends got the same entry id"
    for index, mine in enumerate(published):
        keys = [parse_entry_id(p.entry_id) for p in mine]
        assert keys == sorted(keys), "a task's sends are out of order"
        assert all(p.event is events[(index + i) % len(events)] for i, p in enumerate(mine))
    return Rate(per_task * CONCURRENCY, elapsed)


async def _prefill(env: Env, backend: str, stream_id: str, session: str, n: int) -> None:
    """``n`` envelopes in ``stream_id`` (untimed; written with ``maxlen=0``: nothing trimmed)."""
    events = wl.events(session)
    payloads = [wl.envelope_bytes(event) for event in events]
    async with _backend(env, backend, maxlen=0) as opened:
        for first in range(0, n, 1000):
            await opened.append(
                [
                    Entry(stream_id, wl.EVENT_TYPE, payloads[i % len(payloads)])
                    for i in range(first, min(n, first + 1000))
                ]
            )


async def consume(env: Env, backend: str) -> Rate:
    """Auto mode over ``n`` prefilled entries: ``async for`` until the last one; the timed
    region includes opening the subscription and leaving it (its final ack flush)."""
    n = env.config.scaled(env.config.consume, backend)
    session = env.session()
    stream_id = f"session/{session}"
    await _prefill(env, backend, stream_id, session, n)
    async with _backend(env, backend) as opened:
        subscriber = StreamSubscriber(opened, OPTIONS)
        start = time.perf_counter()
        seen = 0
        async with subscriber.subscribe(stream_id, start=StartPosition.oldest()) as events:
            async for _event in events:
                seen += 1
                if seen == n:
                    break
        elapsed = time.perf_counter() - start
        await opened.destroy(stream_id)
    return Rate(n, elapsed)


async def manual_concurrent(env: Env, backend: str) -> Rate:
    """Manual mode over ``n`` prefilled entries: 64 worker tasks iterate the subscription, each
    awaiting ``ack()`` of the delivery it took before taking the next."""
    n = env.config.scaled(env.config.manual, backend)
    session = env.session()
    stream_id = f"session/{session}"
    await _prefill(env, backend, stream_id, session, n)
    async with _backend(env, backend) as opened:
        subscriber = StreamSubscriber(opened, OPTIONS)
        start = time.perf_counter()
        acked = 0
        async with (
            subscriber.subscribe_manual(stream_id, start=StartPosition.oldest()) as deliveries,
            anyio.create_task_group() as tg,
        ):

            async def worker() -> None:
                nonlocal acked
                async for delivery in deliveries:
                    assert delivery.event is not None
                    await delivery.ack()
                    acked += 1
                    if acked == n:
                        tg.cancel_scope.cancel()

            for _ in range(CONCURRENCY):
                tg.start_soon(worker)
        elapsed = time.perf_counter() - start
        await opened.destroy(stream_id)
    return Rate(n, elapsed)


async def latency(env: Env, backend: str) -> Latency:
    """``send`` at 1,000 events/s into an auto-mode subscription (opened first, at newest);
    the latency is taken when the ``async for`` body gets the decoded event."""
    count = int(env.config.latency_seconds * 1000)
    session = env.session()
    stream_id = f"session/{session}"
    samples: list[float] = []
    async with _backend(env, backend) as opened:
        sink = StreamSink(opened)
        subscriber = StreamSubscriber(opened, OPTIONS)
        async with subscriber.subscribe(stream_id) as events:

            async def send(_i: int) -> None:
                await sink.send(wl.latency_event(session))

            async def consume_all() -> None:
                async for event in events:
                    samples.append((time.perf_counter_ns() - event.payload["t0"]) / 1000)
                    if len(samples) == count:
                        break

            async with anyio.create_task_group() as tg:
                tg.start_soon(consume_all)
                await pace(1000, count, send)
        await opened.destroy(stream_id)
    return Latency(tuple(samples[20:]))


async def e2e(env: Env, backend: str) -> Rate:
    """``send`` in one task, an auto-mode subscription (opened first) in another, until the
    subscriber has every event. The stream has the default ``maxlen`` (1000), as in real use:
    the subscriber keeps up, and should it ever fall 1000 events behind, entries would be
    trimmed unread and the run fails instead of reporting a number."""
    n = env.config.memory_e2e
    session = env.session()
    stream_id = f"session/{session}"
    events = wl.events(session)
    async with _backend(env, backend) as opened:
        sink = StreamSink(opened)
        subscriber = StreamSubscriber(opened, OPTIONS)
        async with subscriber.subscribe(stream_id) as received:

            async def produce() -> None:
                for i in range(n):
                    await sink.send(events[i % len(events)])

            start = time.perf_counter()
            seen = 0
            with anyio.move_on_after(max(30.0, n / 1000)) as timeout:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(produce)
                    async for _event in received:
                        seen += 1
                        if seen == n:
                            break
            elapsed = time.perf_counter() - start
        await opened.destroy(stream_id)
    if timeout.cancelled_caught:
        raise RuntimeError(
            f"{backend} e2e: the subscriber got {seen} of {n} events: it fell more than maxlen "
            "behind and entries were trimmed unread"
        )
    return Rate(n, elapsed)
