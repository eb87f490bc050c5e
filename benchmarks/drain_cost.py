"""What the drain (docs/drain.md) costs a sender on Redis:
``python -m benchmarks.drain_cost [--url URL] [--events N] [--sessions S] [--tasks T] [--repeat R]``.

Sends N events (spread over S sessions) through a ``StreamSink`` without a drain, and with
``DrainOptions(shards=1)`` and ``shards=16``: once from one task (each send awaited: the latency a
runtime sees) and once from T concurrent tasks (sends share pipelined round trips: the
throughput). For each it reports the median of R runs of µs per send, events/s, the Redis
commands per event (``INFO commandstats``) and the memory the streams take per event
(``MEMORY USAGE`` of every key written). Without ``--url`` it starts a private redis-server
(the tests' helper).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections import Counter

import anyio
import redis.asyncio as aioredis

from streamsink import DrainOptions, SinkOptions, StreamEvent, StreamSink, open_backend

from ._server import redis_url

__all__ = ["main"]

PAYLOAD = {"tool": "search", "args": {"q": "drain cost", "limit": 10}, "text": "x" * 200}


def _calls(stats: dict[str, dict[str, int]]) -> Counter[str]:
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})


async def measure(
    url: str, shards: int | None, events: int, sessions: int, tasks: int
) -> dict[str, float]:
    """One run: µs per send, events/s, commands and bytes per event."""
    token = uuid.uuid4().hex[:8]
    drain = None if shards is None else DrainOptions(shards=shards, prefix=f"bench-drain-{token}")
    # Unbounded streams, so that the memory figures count every entry written.
    backend = await open_backend(url + ("&" if "?" in url else "?") + "maxlen=0")
    admin = aioredis.Redis.from_url(url, protocol=2)
    try:
        sink = StreamSink(backend, SinkOptions(drain=drain))
        names = [f"bench-{token}-{n}" for n in range(sessions)]
        per_task = events // tasks
        await admin.config_resetstat()

        async def send(task: int) -> None:
            for index in range(per_task):
                session = names[(task * per_task + index) % sessions]
                await sink.send(StreamEvent("tool_start", "run", session, payload=PAYLOAD))

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for task in range(tasks):
                tg.start_soon(send, task)
        elapsed = time.perf_counter() - started
        sent = per_task * tasks
        calls = _calls(await admin.info("commandstats"))
        calls -= Counter({"config|resetstat": 1})
        keys = [f"pulse:stream:session/{name}" for name in names]
        if drain is not None:
            keys += [f"pulse:stream:{stream_id}" for stream_id in drain.stream_ids()]
        memory = 0
        for key in keys:
            memory += await admin.memory_usage(key) or 0
        await admin.delete(*keys)
        return {
            "us_per_send": elapsed / sent * 1e6 * tasks,
            "events_per_s": sent / elapsed,
            "commands_per_event": sum(calls.values()) / sent,
            "xadd_per_event": calls["xadd"] / sent,
            "bytes_per_event": memory / sent,
        }
    finally:
        await admin.aclose()
        await backend.aclose()


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.drain_cost")
    parser.add_argument("--url", help="a real Redis (default: a private redis-server)")
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=64, help="concurrent senders")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    settings: list[tuple[str, int | None]] = [
        ("no drain", None),
        ("drain, 1 shard", 1),
        ("drain, 16 shards", 16),
    ]
    with redis_url(args.url) as url:
        print(
            f"{args.events} events of ~{len(str(PAYLOAD))} payload chars over {args.sessions} "
            f"sessions, median of {args.repeat} runs"
        )
        header = (
            f"{'':18} {'senders':>7} {'µs/send':>8} {'events/s':>9} {'cmds/ev':>8} "
            f"{'XADD/ev':>8} {'bytes/ev':>9}"
        )
        print(header)
        for tasks in (1, args.tasks):
            base: dict[str, float] | None = None
            for label, shards in settings:
                runs = [
                    anyio.run(measure, url, shards, args.events, args.sessions, tasks)
                    for _ in range(args.repeat)
                ]
                result = _median(runs)
                base = base or result
                ratio = result["us_per_send"] / base["us_per_send"]
                print(
                    f"{label:18} {tasks:>7} {result['us_per_send']:>8.1f} "
                    f"{result['events_per_s']:>9.0f} {result['commands_per_event']:>8.2f} "
                    f"{result['xadd_per_event']:>8.2f} {result['bytes_per_event']:>9.0f}"
                    f"   x{ratio:.2f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
