"""Raw baselines on NATS JetStream: nats-py doing the same work as streamsink-nats by hand.

Each run makes a JetStream stream as streamsink-nats does (one subject, file storage,
``max_msgs`` 1000 with the oldest discarded); each producer encodes the event with
``orjson.dumps`` and publishes it with the event type in a header and the expected stream set
(``Nats-Expected-Stream``), as streamsink-nats does; each consumer is a durable pull consumer
with explicit acks that fetches up to 100 and decodes every message with ``orjson.loads``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import nats
import nats.errors
import orjson
from nats.js import api

from streamsink import StreamEvent

from . import _workload as wl
from ._env import Env
from ._measure import Latency, Rate, pace

__all__ = ["consume", "latency", "send_batch", "send_concurrent", "send_seq"]

CONCURRENCY = 64
BATCH = 100


@asynccontextmanager
async def _client(env: Env) -> AsyncIterator[Any]:
    nc = await nats.connect(env.url("nats"))
    try:
        yield nc
    finally:
        await nc.close()


class _Stream:
    """A JetStream stream of one subject, named after a fresh session."""

    def __init__(self, js: Any, session: str) -> None:
        self.js = js
        self.name = f"BENCHRAW_{session}"
        self.subject = f"benchraw.{session}"

    async def create(self, max_msgs: int = wl.MAXLEN) -> None:
        await self.js.add_stream(
            api.StreamConfig(
                name=self.name,
                subjects=[self.subject],
                max_msgs=max_msgs,
                discard=api.DiscardPolicy.OLD,
                storage=api.StorageType.FILE,
            )
        )

    async def publish(self, event: StreamEvent) -> api.PubAck:
        return await self.js.publish(
            self.subject, wl.raw_encode(event), stream=self.name, headers={"n": event.type}
        )

    async def publish_async(self, event: StreamEvent) -> asyncio.Future[api.PubAck]:
        return await self.js.publish_async(
            self.subject, wl.raw_encode(event), stream=self.name, headers={"n": event.type}
        )

    async def pull(self, deliver: api.DeliverPolicy = api.DeliverPolicy.ALL) -> Any:
        config = api.ConsumerConfig(ack_policy=api.AckPolicy.EXPLICIT, deliver_policy=deliver)
        return await self.js.pull_subscribe(
            self.subject, durable=wl.GROUP, stream=self.name, config=config
        )

    async def delete(self) -> None:
        await self.js.delete_stream(self.name)


async def _warm_stream(nc: Any, session: str, events: list[StreamEvent]) -> _Stream:
    """A new stream for ``session`` that has taken 20 of ``events``, so the timed sends that
    follow find it (and the connection) warm."""
    stream = _Stream(nc.jetstream(), session)
    await stream.create()
    for event in events[:20]:
        await stream.publish(event)
    return stream


async def send_seq(env: Env, backend: str) -> Rate:
    n = env.config.scaled(env.config.send_seq, backend)
    session = env.session()
    events = wl.events(session)
    async with _client(env) as nc:
        stream = await _warm_stream(nc, session, events)
        start = time.perf_counter()
        for i in range(n):
            await stream.publish(events[i % len(events)])
        elapsed = time.perf_counter() - start
        await stream.delete()
    return Rate(n, elapsed)


async def send_concurrent(env: Env, backend: str) -> Rate:
    """64 tasks on one connection (NATS multiplexes requests on it), each awaiting its publish
    acknowledgement before the next."""
    per_task = env.config.scaled(env.config.send_concurrent, backend) // CONCURRENCY
    session = env.session()
    events = wl.events(session)
    async with _client(env) as nc:
        stream = await _warm_stream(nc, session, events)

        async def task(offset: int) -> None:
            for i in range(per_task):
                await stream.publish(events[(offset + i) % len(events)])

        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for offset in range(CONCURRENCY):
                tg.start_soon(task, offset)
        elapsed = time.perf_counter() - start
        await stream.delete()
    return Rate(per_task * CONCURRENCY, elapsed)


async def send_batch(env: Env, backend: str) -> Rate:
    """Per batch of 100: ``publish_async`` each, then await the 100 acknowledgements."""
    n = env.config.scaled(env.config.send_batch, backend) // BATCH * BATCH
    session = env.session()
    events = wl.events(session)
    async with _client(env) as nc:
        stream = await _warm_stream(nc, session, events)
        start = time.perf_counter()
        for first in range(0, n, BATCH):
            acks = [
                await stream.publish_async(events[i % len(events)])
                for i in range(first, first + BATCH)
            ]
            for ack in acks:
                await ack
        elapsed = time.perf_counter() - start
        await stream.delete()
    return Rate(n, elapsed)


async def consume(env: Env, backend: str) -> Rate:
    """A durable pull consumer over ``n`` prefilled messages: fetch 100, ``orjson.loads`` and
    ``ack()`` each (acks are one-way publishes), then a flush so the server has the last acks."""
    n = env.config.scaled(env.config.consume, backend)
    session = env.session()
    events = wl.events(session)
    async with _client(env) as nc:
        stream = _Stream(nc.jetstream(), session)
        await stream.create(max_msgs=-1)
        for first in range(0, n, 1000):
            acks = [
                await stream.publish_async(events[i % len(events)])
                for i in range(first, min(n, first + 1000))
            ]
            await asyncio.gather(*acks)
        start = time.perf_counter()
        sub = await stream.pull()
        done = 0
        while done < n:
            for msg in await sub.fetch(BATCH, timeout=5):
                orjson.loads(msg.data)
                await msg.ack()
                done += 1
        await nc.flush()
        elapsed = time.perf_counter() - start
        await stream.delete()
    return Rate(n, elapsed)


async def latency(env: Env, backend: str) -> Latency:
    """Awaited publish at 1,000 events/s; a pull consumer on its own connection, created first
    (new messages only), waits in ``fetch(100)``, decodes each message (latency taken then)
    and acks it."""
    count = int(env.config.latency_seconds * 1000)
    session = env.session()
    samples: list[float] = []
    async with _client(env) as producer_nc, _client(env) as consumer_nc:
        producer = _Stream(producer_nc.jetstream(), session)
        await producer.create()
        sub = await _Stream(consumer_nc.jetstream(), session).pull(api.DeliverPolicy.NEW)

        async def consume_all() -> None:
            while len(samples) < count:
                try:
                    msgs = await sub.fetch(BATCH, timeout=1)
                except nats.errors.TimeoutError:
                    continue
                for msg in msgs:
                    doc = orjson.loads(msg.data)
                    samples.append((time.perf_counter_ns() - doc["payload"]["t0"]) / 1000)
                    await msg.ack()

        async def send(_i: int) -> None:
            await producer.publish(wl.latency_event(session))

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume_all)
            await anyio.sleep(0.05)
            await pace(1000, count, send)
        await producer.delete()
    return Latency(tuple(samples[20:]))
