"""Fan-out readers with shared reads against one reader (and connection) each, on Redis:
``python -m benchmarks.fanout_shared [--url URL] [--readers N] [--streams M] [--rate R]
[--seconds S] [--idle I] [--max-block B]``.

N in-process fan-out subscriptions over M streams (N/M per stream), first with shared reads
(the default), then with ``shared_reads=False``. For each: the read connections the readers
hold (``CLIENT LIST`` against the count before they joined), the time to join them all, the CPU
this process (and redis-server) spend while every reader is idle, as % of one core, and the
latency from publish (the envelope's timestamp) to each reader while R events/s are sent,
spread round-robin over the streams. Without ``--url`` it starts a private redis-server.

Unshared readers hold a connection each, in this process and in the server: N is capped to
what the open-file limit allows (said in the output). Measured, never asserted.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime

import anyio
import redis.asyncio as aioredis

import streamsink
from streamsink import StreamEvent, SubscriberOptions

from ._server import redis_url

__all__ = ["main"]

_FD_MARGIN = 256  # descriptors kept for everything else (the server, the pool, files)
_JOINS = 32  # subscriptions entering at once (below the pool's 50 connections)


def _fd_cap(readers: int) -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(1, min(readers, soft - _FD_MARGIN))


async def _server_cpu(admin: aioredis.Redis) -> float:
    info = await admin.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def measure(
    url: str,
    shared: bool,
    readers: int,
    streams_count: int,
    rate: float,
    seconds: float,
    idle: float,
    max_block: float | None = None,
) -> dict[str, float]:
    tag = uuid.uuid4().hex[:8]
    sessions = [f"fanout-{tag}-{i}" for i in range(streams_count)]
    latencies: list[float] = []
    result: dict[str, float] = {"readers": readers}
    async with aioredis.Redis.from_url(url, protocol=2) as admin:
        before = len(await admin.client_list())
        async with streamsink.connect(url) as streams, anyio.create_task_group() as tg:
            subscriber = streams.new_subscriber(
                SubscriberOptions(
                    group=None, shared_reads=shared, max_block=max_block, on_error=lambda e: None
                )
            )
            joined = 0
            all_joined = anyio.Event()
            # Unshared readers each take a pooled connection to resolve their start: joins go a
            # few at a time (the pool's size), as a server accepting connections would see them.
            joining = anyio.CapacityLimiter(_JOINS)

            async def read(index: int) -> None:
                nonlocal joined
                released = False
                await joining.acquire_on_behalf_of(index)
                try:
                    stream = f"session/{sessions[index % streams_count]}"
                    async with subscriber.subscribe(stream) as events:
                        joining.release_on_behalf_of(index)
                        released = True
                        joined += 1
                        if joined == readers:
                            all_joined.set()
                        async for event in events:
                            if event.timestamp is not None:  # set by the sink on send
                                sent_at = event.timestamp.timestamp()
                                latencies.append(datetime.now(UTC).timestamp() - sent_at)
                finally:
                    if not released:
                        joining.release_on_behalf_of(index)

            started = time.perf_counter()
            for index in range(readers):
                tg.start_soon(read, index)
            await all_joined.wait()
            result["join_s"] = time.perf_counter() - started
            await anyio.sleep(1.0)  # settle: every pump waiting
            result["connections"] = len(await admin.client_list()) - before
            cpu, server = time.process_time(), await _server_cpu(admin)
            wall = time.perf_counter()
            await anyio.sleep(idle)
            wall = time.perf_counter() - wall
            result["idle_cpu_pct"] = 100 * (time.process_time() - cpu) / wall
            result["idle_server_cpu_pct"] = 100 * (await _server_cpu(admin) - server) / wall
            # Load: rate events/s round-robin over the streams, paced against the clock.
            total = int(rate * seconds)
            interval = 1 / rate
            start = anyio.current_time()
            for k in range(total):
                delay = start + k * interval - anyio.current_time()
                if delay > 0:
                    await anyio.sleep(delay)
                await streams.sink.send(StreamEvent("tick", f"r{k}", sessions[k % streams_count]))
            expected = total * (readers // streams_count) + sum(
                1 for k in range(total) if k % streams_count < readers % streams_count
            )
            with anyio.move_on_after(10):
                while len(latencies) < expected:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            result["delivered"] = len(latencies)
            result["expected"] = expected
            tg.cancel_scope.cancel()
    ordered = sorted(latencies) or [float("nan")]
    result["p50_ms"] = 1000 * statistics.median(ordered)
    result["p99_ms"] = 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fanout_shared")
    parser.add_argument("--url", help="a real Redis (default: a private redis-server)")
    parser.add_argument("--readers", type=int, default=10_000)
    parser.add_argument("--streams", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=1000.0, help="events/s over all streams")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of load")
    parser.add_argument("--idle", type=float, default=6.0, help="seconds of idle CPU measured")
    parser.add_argument(
        "--max-block",
        type=float,
        default=None,
        help="SubscriberOptions.max_block (default 5 s for fan-out: each idle reader returns "
        "that often, which is most of the idle CPU)",
    )
    args = parser.parse_args(argv)
    unshared = _fd_cap(args.readers)
    print(
        f"{args.readers} fan-out readers over {args.streams} streams, {args.rate:g} events/s "
        f"for {args.seconds:g} s (idle CPU over {args.idle:g} s, % of one core)"
    )
    if unshared < args.readers:
        print(f"unshared capped to {unshared} readers: the open-file limit allows no more")
    with redis_url(args.url, "--maxclients", "19000") as url:
        for name, shared, n in (("shared", True, args.readers), ("unshared", False, unshared)):
            row = anyio.run(
                measure,
                url,
                shared,
                n,
                args.streams,
                args.rate,
                args.seconds,
                args.idle,
                args.max_block,
            )
            _print(name, row)
    return 0


def _print(name: str, row: dict[str, float]) -> None:
    print(
        f"{name:9} readers {row['readers']:6.0f}  read connections {row['connections']:6.0f}  "
        f"join {row['join_s']:6.2f} s  idle CPU {row['idle_cpu_pct']:5.1f} % "
        f"(redis {row['idle_server_cpu_pct']:4.1f} %)  "
        f"p50 {row['p50_ms']:7.2f} ms  p99 {row['p99_ms']:7.2f} ms  "
        f"delivered {row['delivered']:.0f}/{row['expected']:.0f}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
