"""The peer: FastStream's Redis stream publisher and consumer-group subscriber on the same work.

FastStream is given its fastest honest configuration: ``logger=None`` (no access log line per
message), ``apply_types=False`` (no pydantic validation of handler arguments; the handler gets
the JSON-decoded body), ``max_records=100`` per read, and ``maxlen=1000`` on writes as the
others. It publishes the same dict the raw baselines encode.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
from faststream import AckPolicy
from faststream.redis import RedisBroker, StreamSub

from . import _workload as wl
from ._env import KEY_PREFIX, Env
from ._measure import Latency, Rate, pace

__all__ = [
    "consume",
    "latency",
    "manual_concurrent",
    "send_batch",
    "send_concurrent",
    "send_seq",
]

CONCURRENCY = 64
BATCH = 100
SLOW_FACTOR = 4  # its consumers run ~10x slower: a quarter of the events is plenty for a rate


def _broker(env: Env) -> RedisBroker:
    return RedisBroker(env.redis_url, logger=None, apply_types=False)


async def _delete(env: Env, key: str) -> None:
    """Delete a stream once its subscriber stopped (deleting it under a blocked read makes
    FastStream log an UNBLOCKED error)."""
    async with env.raw_client("redis") as client:
        await client.delete(key)


def _key(env: Env) -> tuple[str, list[dict[str, Any]]]:
    session = env.session()
    return f"{KEY_PREFIX}fs/{session}", [wl.event_dict(event) for event in wl.events(session)]


async def send_seq(env: Env) -> Rate:
    n = env.config.send_seq
    key, bodies = _key(env)
    broker = _broker(env)
    client = await broker.connect()
    try:
        for body in bodies[:20]:
            await broker.publish(body, stream=key, maxlen=wl.MAXLEN)
        start = time.perf_counter()
        for i in range(n):
            await broker.publish(bodies[i % len(bodies)], stream=key, maxlen=wl.MAXLEN)
        elapsed = time.perf_counter() - start
        await client.delete(key)
    finally:
        await broker.stop()
    return Rate(n, elapsed)


async def send_batch(env: Env) -> Rate:
    """``publish(..., pipeline=pipe)`` 100 times, then one ``pipe.execute()``."""
    n = env.config.send_batch // BATCH * BATCH
    key, bodies = _key(env)
    broker = _broker(env)
    client = await broker.connect()
    try:
        for body in bodies[:20]:
            await broker.publish(body, stream=key, maxlen=wl.MAXLEN)
        start = time.perf_counter()
        for _ in range(n // BATCH):
            pipe = client.pipeline(transaction=False)
            for body in bodies:
                await broker.publish(body, stream=key, maxlen=wl.MAXLEN, pipeline=pipe)
            await pipe.execute()
        elapsed = time.perf_counter() - start
        await client.delete(key)
    finally:
        await broker.stop()
    return Rate(n, elapsed)


async def send_concurrent(env: Env) -> Rate:
    per_task = env.config.send_concurrent // CONCURRENCY
    key, bodies = _key(env)
    broker = _broker(env)
    client = await broker.connect()

    async def task(offset: int) -> None:
        for i in range(per_task):
            await broker.publish(bodies[(offset + i) % len(bodies)], stream=key, maxlen=wl.MAXLEN)

    try:
        async with anyio.create_task_group() as tg:  # open the pool's 64 connections first
            for _ in range(CONCURRENCY):
                tg.start_soon(client.ping)
        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for offset in range(CONCURRENCY):
                tg.start_soon(task, offset)
        elapsed = time.perf_counter() - start
        await client.delete(key)
    finally:
        await broker.stop()
    return Rate(per_task * CONCURRENCY, elapsed)


async def _prefill(broker: RedisBroker, key: str, bodies: list[dict[str, Any]], n: int) -> None:
    """``n`` FastStream-format messages in ``key`` (no trimming) and the group at ``0``."""
    client = await broker.connect()
    for first in range(0, n, 1000):
        pipe = client.pipeline(transaction=False)
        for i in range(first, min(n, first + 1000)):
            await broker.publish(bodies[i % len(bodies)], stream=key, pipeline=pipe)
        await pipe.execute()
    await client.xgroup_create(key, wl.GROUP, id="0")


async def consume(env: Env) -> Rate:
    """A consumer-group subscriber with the default ack policy (one XACK after each handler
    call). Timed from ``broker.start()`` to the handler's last call."""
    n = env.config.consume // SLOW_FACTOR
    key, bodies = _key(env)
    broker = _broker(env)
    done = anyio.Event()
    seen = 0

    @broker.subscriber(stream=StreamSub(key, group=wl.GROUP, consumer="c1", max_records=BATCH))
    async def handler(body: Any) -> None:
        nonlocal seen
        seen += 1
        if seen == n:
            done.set()

    try:
        await _prefill(broker, key, bodies, n)
        start = time.perf_counter()
        await broker.start()
        await done.wait()
        elapsed = time.perf_counter() - start
    finally:
        await broker.stop()
    await _delete(env, key)
    return Rate(n, elapsed)


async def manual_concurrent(env: Env) -> Rate:
    """``AckPolicy.MANUAL`` with ``max_workers=64``: each handler call awaits ``msg.ack()``."""
    n = env.config.manual // SLOW_FACTOR
    key, bodies = _key(env)
    broker = _broker(env)
    done = anyio.Event()
    acked = 0

    @broker.subscriber(
        stream=StreamSub(key, group=wl.GROUP, consumer="c1", max_records=BATCH),
        ack_policy=AckPolicy.MANUAL,
        max_workers=CONCURRENCY,
    )
    async def handler(body: Any) -> None:
        nonlocal acked
        await broker.context.get_local("message").ack()
        acked += 1
        if acked == n:
            done.set()

    try:
        await _prefill(broker, key, bodies, n)
        start = time.perf_counter()
        await broker.start()
        await done.wait()
        elapsed = time.perf_counter() - start
    finally:
        await broker.stop()
    await _delete(env, key)
    return Rate(n, elapsed)


async def latency(env: Env) -> Latency:
    """``broker.publish`` at 1,000 events/s into a consumer-group subscriber (started first)."""
    count = int(env.config.latency_seconds * 1000)
    session = env.session()
    key = f"{KEY_PREFIX}fs/{session}"
    broker = _broker(env)
    samples: list[float] = []
    done = anyio.Event()

    @broker.subscriber(stream=StreamSub(key, group=wl.GROUP, consumer="c1", max_records=BATCH))
    async def handler(body: Any) -> None:
        samples.append((time.perf_counter_ns() - body["payload"]["t0"]) / 1000)
        if len(samples) == count:
            done.set()

    async def send(_i: int) -> None:
        await broker.publish(wl.event_dict(wl.latency_event(session)), stream=key, maxlen=wl.MAXLEN)

    try:
        await broker.start()
        await pace(1000, count, send)
        with anyio.fail_after(10):
            await done.wait()
    finally:
        await broker.stop()
    await _delete(env, key)
    return Latency(tuple(samples[20:]))
