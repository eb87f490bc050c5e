"""Raw baselines: redis-py asyncio (hiredis parser) doing the same work as streamsink by hand.

Each producer encodes the same event with ``orjson.dumps`` and writes it as streamsink does
(``XADD key MAXLEN ~ 1000 * n <type> p <bytes>``); each consumer decodes every entry with
``orjson.loads``. Run against ``fakeredis`` too (same code, a ``FakeAsyncRedis`` client).
"""

from __future__ import annotations

import time

import anyio
import orjson
import redis.asyncio as aioredis

from streamsink import StreamEvent

from . import _workload as wl
from ._env import KEY_PREFIX, Env
from ._measure import Latency, Rate, pace

__all__ = [
    "consume",
    "latency",
    "manual_concurrent",
    "manual_seq",
    "send_batch",
    "send_concurrent",
    "send_seq",
]

CONCURRENCY = 64
BATCH = 100


def _fields(event: StreamEvent) -> dict[str, bytes | str]:
    return {"n": event.type, "p": wl.raw_encode(event)}


async def _xadd(client: aioredis.Redis, key: str, event: StreamEvent) -> object:
    return await client.xadd(key, _fields(event), maxlen=wl.MAXLEN, approximate=True)


async def send_seq(env: Env, backend: str) -> Rate:
    n = env.config.scaled(env.config.send_seq, backend)
    session = env.session()
    key = f"{KEY_PREFIX}session/{session}"
    events = wl.events(session)
    async with env.raw_client(backend) as client:
        for event in events[:20]:
            await _xadd(client, key, event)
        start = time.perf_counter()
        for i in range(n):
            await _xadd(client, key, events[i % len(events)])
        elapsed = time.perf_counter() - start
        await client.delete(key)
    return Rate(n, elapsed)


async def send_batch(env: Env, backend: str) -> Rate:
    n = env.config.scaled(env.config.send_batch, backend) // BATCH * BATCH
    session = env.session()
    key = f"{KEY_PREFIX}session/{session}"
    events = wl.events(session)
    async with env.raw_client(backend) as client:
        for event in events[:20]:
            await _xadd(client, key, event)
        start = time.perf_counter()
        for first in range(0, n, BATCH):
            pipe = client.pipeline(transaction=False)
            for i in range(first, first + BATCH):
                pipe.xadd(key, _fields(events[i % len(events)]), maxlen=wl.MAXLEN, approximate=True)
            await pipe.execute()
        elapsed = time.perf_counter() - start
        await client.delete(key)
    return Rate(n, elapsed)


async def send_concurrent(env: Env, backend: str) -> Rate:
    per_task = env.config.scaled(env.config.send_concurrent, backend) // CONCURRENCY
    session = env.session()
    key = f"{KEY_PREFIX}session/{session}"
    events = wl.events(session)

    async with env.raw_client(backend) as client:

        async def task(offset: int) -> None:
            for i in range(per_task):
                await _xadd(client, key, events[(offset + i) % len(events)])

        async with anyio.create_task_group() as tg:  # open the pool's 64 connections first
            for offset in range(CONCURRENCY):
                tg.start_soon(_xadd, client, key, events[offset % len(events)])
        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for offset in range(CONCURRENCY):
                tg.start_soon(task, offset)
        elapsed = time.perf_counter() - start
        await client.delete(key)
    return Rate(per_task * CONCURRENCY, elapsed)


async def prefill(client: aioredis.Redis, key: str, session: str, n: int) -> None:
    """``n`` entries in ``key`` (no trimming), pipelined, untimed."""
    events = wl.events(session)
    for first in range(0, n, 1000):
        pipe = client.pipeline(transaction=False)
        for i in range(first, min(n, first + 1000)):
            pipe.xadd(key, _fields(events[i % len(events)]))
        await pipe.execute()


async def _prefilled(env: Env, backend: str, count: int) -> tuple[str, str, int]:
    n = env.config.scaled(count, backend)
    session = env.session()
    return session, f"{KEY_PREFIX}session/{session}", n


async def consume(env: Env, backend: str) -> Rate:
    """XREADGROUP COUNT 100, orjson.loads per entry, one XACK per batch."""
    session, key, n = await _prefilled(env, backend, env.config.consume)
    async with env.raw_client(backend) as client:
        await prefill(client, key, session, n)
        start = time.perf_counter()
        await client.xgroup_create(key, wl.GROUP, id="0")
        done = 0
        while done < n:
            reply = await client.xreadgroup(wl.GROUP, "c1", {key: ">"}, count=BATCH)
            for _stream, entries in reply:
                ids = []
                for entry_id, fields in entries:
                    orjson.loads(fields[b"p"])
                    ids.append(entry_id)
                await client.xack(key, wl.GROUP, *ids)
                done += len(ids)
        elapsed = time.perf_counter() - start
        await client.delete(key)
    return Rate(n, elapsed)


async def manual_seq(env: Env, backend: str) -> Rate:
    """XREADGROUP COUNT 100, then per entry orjson.loads and one awaited XACK, in order."""
    session, key, n = await _prefilled(env, backend, env.config.manual_seq)
    async with env.raw_client(backend) as client:
        await prefill(client, key, session, n)
        start = time.perf_counter()
        await client.xgroup_create(key, wl.GROUP, id="0")
        done = 0
        while done < n:
            reply = await client.xreadgroup(wl.GROUP, "c1", {key: ">"}, count=BATCH)
            for _stream, entries in reply:
                for entry_id, fields in entries:
                    orjson.loads(fields[b"p"])
                    await client.xack(key, wl.GROUP, entry_id)
                    done += 1
        elapsed = time.perf_counter() - start
        await client.delete(key)
    return Rate(n, elapsed)


async def manual_concurrent(env: Env, backend: str) -> Rate:
    """One reader (XREADGROUP COUNT 100) feeding 64 worker tasks through a memory stream of
    100; each worker decodes its entry and awaits its own XACK (the driver streamsink's manual
    scenario uses, done by hand)."""
    session, key, n = await _prefilled(env, backend, env.config.manual)
    async with env.raw_client(backend) as client:
        await prefill(client, key, session, n)
        send, receive = anyio.create_memory_object_stream[tuple[bytes, bytes]](BATCH)

        async def reader() -> None:
            async with send:
                read = 0
                while read < n:
                    reply = await client.xreadgroup(wl.GROUP, "c1", {key: ">"}, count=BATCH)
                    for _stream, entries in reply:
                        for entry_id, fields in entries:
                            await send.send((entry_id, fields[b"p"]))
                        read += len(entries)

        async def worker() -> None:
            async for entry_id, payload in receive:
                orjson.loads(payload)
                await client.xack(key, wl.GROUP, entry_id)

        async with anyio.create_task_group() as tg:  # open the pool's connections first
            for _ in range(CONCURRENCY):
                tg.start_soon(client.ping)
        start = time.perf_counter()
        await client.xgroup_create(key, wl.GROUP, id="0")
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            for _ in range(CONCURRENCY):
                tg.start_soon(worker)
        elapsed = time.perf_counter() - start
        await client.delete(key)
    return Rate(n, elapsed)


async def latency(env: Env, backend: str) -> Latency:
    """Awaited XADD at 1,000 events/s; a consumer blocked in XREADGROUP COUNT 100 BLOCK on its
    own client decodes each entry (latency taken then) and acks each batch."""
    count = int(env.config.latency_seconds * 1000)
    session = env.session()
    key = f"{KEY_PREFIX}session/{session}"
    samples: list[float] = []
    async with env.raw_client(backend) as producer, env.raw_client(backend) as consumer:
        await producer.xgroup_create(key, wl.GROUP, id="$", mkstream=True)

        async def consume_all() -> None:
            while len(samples) < count:
                reply = await consumer.xreadgroup(
                    wl.GROUP, "c1", {key: ">"}, count=BATCH, block=1000
                )
                for _stream, entries in reply:
                    for _entry_id, fields in entries:
                        doc = orjson.loads(fields[b"p"])
                        samples.append((time.perf_counter_ns() - doc["payload"]["t0"]) / 1000)
                    await consumer.xack(key, wl.GROUP, *[entry_id for entry_id, _ in entries])

        async def send(_i: int) -> None:
            await _xadd(producer, key, wl.latency_event(session))

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume_all)
            await anyio.sleep(0.05)
            await pace(1000, count, send)
        await producer.delete(key)
    return Latency(tuple(samples[20:]))
