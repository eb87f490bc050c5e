"""Raw in-process baseline: an anyio memory object stream (buffer 100) carrying
``orjson.dumps`` bytes from a producer task to a consumer task that ``orjson.loads`` them,
with the plain awaited ``send()`` / ``async for`` a user would write."""

from __future__ import annotations

import time

import anyio
import orjson

from . import _workload as wl
from ._env import Env
from ._measure import Latency, Rate, pace

__all__ = ["e2e", "latency"]

BUFFER = 100


async def e2e(env: Env) -> Rate:
    n = env.config.memory_e2e
    events = wl.events(env.session())
    send, receive = anyio.create_memory_object_stream[bytes](BUFFER)

    async def produce() -> None:
        async with send:
            for i in range(n):
                await send.send(wl.raw_encode(events[i % len(events)]))

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(produce)
        async with receive:
            async for data in receive:
                orjson.loads(data)
    return Rate(n, time.perf_counter() - start)


async def latency(env: Env) -> Latency:
    count = int(env.config.latency_seconds * 1000)
    session = env.session()
    send, receive = anyio.create_memory_object_stream[bytes](BUFFER)
    samples: list[float] = []

    async def produce(_i: int) -> None:
        await send.send(wl.raw_encode(wl.latency_event(session)))

    async def consume() -> None:
        async with receive:
            async for data in receive:
                doc = orjson.loads(data)
                samples.append((time.perf_counter_ns() - doc["payload"]["t0"]) / 1000)

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        async with send:
            await pace(1000, count, produce)
    return Latency(tuple(samples[20:]))
