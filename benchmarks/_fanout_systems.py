"""The systems the fan-out benchmark runs, one per fresh interpreter (see ``fanout.py``).

Each system opens its readers (a task each, as one SSE handler per viewer would be), says when
all are subscribed, and can publish one event to stream ``s``. The measurement around them is
the same for all (``measure``): setup, RSS, idle CPU and Redis commands, connections, then
paced publishing with latency per delivery.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import attrs
import orjson
import psutil
import redis.asyncio as aioredis

import streamsink
from streamsink import StreamEvent, SubscriberOptions

from . import _workload as wl
from ._env import KEY_PREFIX
from ._fanout_stats import (
    FanoutResult,
    calls_of,
    commands_delta,
    count_connections,
    readers_per_stream,
)
from ._measure import percentile

__all__ = ["SYSTEMS", "ChildSpec", "has_shared_reads", "measure"]

OPEN_CONCURRENCY = 64  # readers entering at once (a burst of 10,000 connects overflows backlogs)
LITESTAR_KEY_PREFIX = "LITESTAR_CHANNELS"  # RedisChannelsStreamBackend's default


def has_shared_reads() -> bool:
    """This tree's ``SubscriberOptions`` has the ``shared_reads`` option."""
    return "shared_reads" in attrs.fields_dict(SubscriberOptions)


@dataclass(frozen=True)
class ChildSpec:
    system: str
    url: str
    readers: int
    streams: int
    rate: float
    seconds: float
    idle_seconds: float
    settle_seconds: float
    drain_seconds: float
    label: str = ""
    note: str = ""


class Tally:
    """What the readers received: one latency sample per (event, reader), duplicates apart."""

    __slots__ = ("all_in", "duplicates", "errors", "expected", "samples_ns")

    def __init__(self) -> None:
        self.samples_ns: list[int] = []
        self.duplicates = 0
        self.errors = 0  # errors the subscriptions reported (and retried), e.g. read timeouts
        self.expected = -1  # set once publishing is done: then all_in is set when all are in
        self.all_in = anyio.Event()

    def expect(self, expected: int) -> None:
        self.expected = expected
        if len(self.samples_ns) >= expected:
            self.all_in.set()

    def error(self, _error: object) -> None:
        self.errors += 1


class Readiness:
    """Counts readers that are subscribed; ``wait`` returns when all ``n`` are."""

    def __init__(self, n: int) -> None:
        self._left = n
        self._done = anyio.Event()
        if n == 0:
            self._done.set()

    def one_ready(self) -> None:
        self._left -= 1
        if self._left == 0:
            self._done.set()

    async def wait(self) -> None:
        await self._done.wait()


Publish = Callable[
    [int, int], Coroutine[Any, Any, None]
]  # (event number, perf_counter_ns at start)


@dataclass
class Running:
    """A system with every reader subscribed. ``publish(i)`` sends event ``i`` (to stream
    ``i % streams``); None for an idle-only system. ``keys`` are its Redis keys (deleted after)."""

    publish: Publish | None
    keys: list[str]


def _event(stream: int, seq: int, token: str, t0_ns: int) -> StreamEvent:
    event = wl.latency_event(f"fo-{token}-{stream}")
    event.payload["t0"] = t0_ns  # when the publish was started, not when its task first ran
    event.payload["seq"] = seq
    return event


def _take(tally: Tally, last: int, payload: dict[str, Any], now: int) -> int:
    """Record one delivery; returns the reader's new last sequence number."""
    seq = payload["seq"]
    if seq <= last:
        tally.duplicates += 1
        return last
    samples = tally.samples_ns
    samples.append(now - payload["t0"])
    if len(samples) == tally.expected:
        tally.all_in.set()
    return int(seq)


# -- streamsink ------------------------------------------------------------------------------


def _streamsink_system(options: SubscriberOptions, one_per_stream: bool) -> Any:
    @asynccontextmanager
    async def run(spec: ChildSpec, tally: Tally, token: str) -> AsyncIterator[Running]:
        n = spec.streams if one_per_stream else spec.readers
        ready = Readiness(n)
        gate = anyio.Semaphore(OPEN_CONCURRENCY)
        async with streamsink.connect(spec.url) as streams:
            subscriber = streams.new_subscriber(options, on_error=tally.error)
            sink = streams.sink

            async def reader(r: int) -> None:
                stream_id = f"session/fo-{token}-{r % spec.streams}"
                async with AsyncExitStack() as stack:
                    async with gate:
                        events = await stack.enter_async_context(subscriber.subscribe(stream_id))
                    ready.one_ready()
                    last = -1
                    async for event in events:
                        last = _take(tally, last, event.payload, time.perf_counter_ns())

            async def publish(i: int, t0_ns: int) -> None:
                await sink.send(_event(i % spec.streams, i, token, t0_ns))

            async with anyio.create_task_group() as tg:
                for r in range(n):
                    tg.start_soon(reader, r)
                await ready.wait()
                keys = [f"{KEY_PREFIX}session/fo-{token}-{s}" for s in range(spec.streams)]
                yield Running(None if one_per_stream else publish, keys)
                tg.cancel_scope.cancel()

    return run


def _fanout_options(shared: bool | None) -> SubscriberOptions:
    if shared is None:  # a tree without the option: today's path
        return SubscriberOptions(group=None)
    # Called only in trees that have the field (has_shared_reads); evolve keeps this importable.
    return attrs.evolve(SubscriberOptions(group=None), shared_reads=shared)


# -- Litestar ---------------------------------------------------------------------------------


def _litestar_system(block_ms: int | None) -> Any:
    @asynccontextmanager
    async def run(spec: ChildSpec, tally: Tally, token: str) -> AsyncIterator[Running]:
        from litestar.channels import ChannelsPlugin
        from litestar.channels.backends.redis import RedisChannelsStreamBackend

        client = aioredis.Redis.from_url(spec.url)
        # As its docs show: one backend with history (MAXLEN ~ history on every XADD), one
        # plugin allowing arbitrary channels; each reader its own subscriber on its channel.
        backend = (
            RedisChannelsStreamBackend(history=wl.MAXLEN, redis=client)
            if block_ms is None
            else RedisChannelsStreamBackend(
                history=wl.MAXLEN, redis=client, stream_sleep_no_subscriptions=block_ms
            )
        )
        plugin = ChannelsPlugin(backend=backend, arbitrary_channels_allowed=True)
        ready = Readiness(spec.readers)
        try:
            async with plugin:

                async def reader(r: int) -> None:
                    channel = f"fo-{token}-{r % spec.streams}"
                    async with plugin.start_subscription([channel]) as subscriber:
                        ready.one_ready()
                        last = -1
                        async for data in subscriber.iter_events():
                            now = time.perf_counter_ns()
                            last = _take(tally, last, orjson.loads(data)["payload"], now)

                async def publish(i: int, t0_ns: int) -> None:
                    event = _event(i % spec.streams, i, token, t0_ns)
                    plugin.publish(wl.raw_encode(event), f"fo-{token}-{i % spec.streams}")

                async with anyio.create_task_group() as tg:
                    for r in range(spec.readers):
                        tg.start_soon(reader, r)
                    await ready.wait()
                    keys = [
                        f"{LITESTAR_KEY_PREFIX}_FO-{token.upper()}-{s}" for s in range(spec.streams)
                    ]
                    yield Running(publish, keys)
                    tg.cancel_scope.cancel()
        finally:
            await client.aclose()

    return run


SYSTEMS: dict[str, Callable[[], Any]] = {
    "streamsink": lambda: _streamsink_system(
        _fanout_options(False if has_shared_reads() else None), one_per_stream=False
    ),
    "streamsink-shared": lambda: _streamsink_system(_fanout_options(True), one_per_stream=False),
    "litestar": lambda: _litestar_system(None),
    "litestar-block1s": lambda: _litestar_system(1000),
    "streamsink-groups": lambda: _streamsink_system(
        SubscriberOptions(group="fanout-bench"), one_per_stream=True
    ),
}


# -- the measurement --------------------------------------------------------------------------


def _rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


def _server_cpu(info: dict[str, Any]) -> float:
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


async def _publish_paced(rate: float, seconds: float, publish: Publish) -> tuple[int, float]:
    """Start ``publish(i, t0)`` at ``rate`` calls per second for ``seconds``, each in a task of
    its own (a slow round trip does not hold up the next, as Litestar's queued ``publish`` does
    not); ``t0`` is taken as it is started. A late loop catches up at once and stops on time.
    Returns how many were started and the rate they were started at; all have finished."""
    period = 1.0 / rate
    count = int(rate * seconds)
    async with anyio.create_task_group() as tg:
        start = time.perf_counter()
        for i in range(count):
            delay = start + i * period - time.perf_counter()
            if delay > 0:
                await anyio.sleep(delay)
            elif time.perf_counter() - start > seconds:  # could not keep up
                count = i
                break
            tg.start_soon(publish, i, time.perf_counter_ns())
        offered = count / max(time.perf_counter() - start, seconds)
    return count, offered


async def measure(spec: ChildSpec) -> FanoutResult:
    """Run ``spec.system`` once and measure it (see the module docstring)."""
    token = uuid.uuid4().hex[:8]
    tally = Tally()
    result = FanoutResult(spec.system, spec.label or spec.system, note=spec.note)
    result.idle_only = spec.system == "streamsink-groups"
    # One connection, used for nothing else: its CLIENT ID is what CLIENT LIST leaves out.
    # CLIENT LIST of 10,000 clients is megabytes, read by a loop that may be busy: no 5 s limit.
    control = aioredis.Redis.from_url(
        spec.url, single_connection_client=True, protocol=2, socket_timeout=120
    )
    try:
        own_id = int(await control.client_id())
        system = SYSTEMS[spec.system]()
        rss_before = _rss_mb()
        started = time.perf_counter()
        async with system(spec, tally, token) as running:
            result.setup_s = time.perf_counter() - started
            result.rss_mb = _rss_mb() - rss_before
            per_stream = readers_per_stream(
                spec.streams if running.publish is None else spec.readers, spec.streams
            )
            result.readers, result.streams = sum(per_stream), spec.streams
            await anyio.sleep(spec.settle_seconds)  # first reads, keep-alive joins

            await control.config_resetstat()
            cpu0, server0, wall0 = time.process_time(), await control.info("cpu"), time.monotonic()
            await anyio.sleep(spec.idle_seconds)
            cpu1, server1, wall1 = time.process_time(), await control.info("cpu"), time.monotonic()
            calls = calls_of(await control.info("commandstats"))
            wall = wall1 - wall0
            result.idle_cpu_pct = 100 * (cpu1 - cpu0) / wall
            result.idle_redis_cpu_pct = 100 * (_server_cpu(server1) - _server_cpu(server0)) / wall
            result.idle_cmds_per_s, top = commands_delta({}, calls, wall)
            result.idle_top = dict(list(top.items())[:4])
            result.connections, result.reading = count_connections(
                await control.client_list(), own_id
            )

            if running.publish is not None:
                count, result.publish_rate = await _publish_paced(
                    spec.rate, spec.seconds, running.publish
                )
                expected = sum(per_stream[i % spec.streams] for i in range(count))
                tally.expect(expected)
                with anyio.move_on_after(spec.drain_seconds):
                    await tally.all_in.wait()
                samples = [ns / 1e6 for ns in tally.samples_ns]
                result.p50_ms = percentile(samples, 50)
                result.p99_ms = percentile(samples, 99)
                result.delivered, result.expected = len(samples), expected
                result.duplicates = tally.duplicates
            result.errors = tally.errors
            leaving = time.perf_counter()
        result.teardown_s = time.perf_counter() - leaving
        for start in range(0, len(running.keys), 500):
            await control.delete(*running.keys[start : start + 500])
    finally:
        await control.aclose()
    return result
