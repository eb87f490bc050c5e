"""What retry-safe publishing costs: on every first attempt (the ``i`` field), and on the rare
retry after a lost reply (a fence round trip, then the resolving script)::

    python -m benchmarks.retry_path [REDIS_URL]    # a private redis-server when no URL is given

1. **First attempt**, in process: building and packing one entry's XADD with and without its
   idempotency value (best of 15 interleaved timeit runs, ns per entry; the VM's speed swings, so
   compare the two rows of one run), and the bytes the field adds to the request.
2. **The script alone**, on the server: ``EVAL`` of the resolving script for one entry over a
   window of W entries since the floor, the entry found at the newest end or not there at all
   (a full, conclusive scan, then the append). Redis's own time per call (``INFO
   commandstats``), which is how long it holds the server.
3. **A retried append, end to end**: an append whose reply is lost after the XADD ran (the
   connection closed, or timed out so it is killed first), against a plain append; median of
   repeated runs, in ms.
"""

from __future__ import annotations

import statistics
import sys
import time
import timeit
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import redis.asyncio as aioredis
import redis.exceptions as rex

from streamsink.backend import Entry
from streamsink_redis import RedisBackend
from streamsink_redis._append import _Values
from streamsink_redis._commands import _pack
from streamsink_redis._scripts import resolve_args
from streamsink_redis._wire import xadd_args

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD = b'{"type":"tool_end","payload":"' + b"x" * 220 + b'"}'  # ~250 bytes, as the benchmarks
WINDOWS = (100, 1_000, 10_000)
RUNS = 30


@contextmanager
def _redis(url: str | None) -> Iterator[str]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # tests.support: the server and the lost replies
    if url:
        yield url
        return
    from tests.support.redis_server import RedisServer

    with RedisServer() as server:
        yield server.url


class _Encoder:
    encoding, encoding_errors = "utf-8", "strict"

    def encode(self, value: Any) -> bytes:
        return str(value).encode()


def first_attempt() -> list[tuple[str, str]]:
    entry = Entry("session/s", "tool_end", PAYLOAD)
    key = "pulse:stream:session/s"
    values, encoder = _Values(), _Encoder()

    def plain() -> bytes:
        return _pack([xadd_args(key, entry, 1000)], encoder)

    def marked() -> bytes:
        return _pack([xadd_args(key, entry, 1000, values.one())], encoder)

    best = {"plain": float("inf"), "marked": float("inf")}
    for _ in range(15):  # interleaved, so a slow phase of the machine hits both
        for name, call in (("plain", plain), ("marked", marked)):
            best[name] = min(best[name], timeit.timeit(call, number=20_000) / 20_000 * 1e9)
    timings = best
    size = len(plain())
    grown = [
        len(_pack([xadd_args(key, entry, 1000, b"%b%x" % (b"x" * 11, n))], encoder)) - size
        for n in (0, 10**7)
    ]
    return [
        ("XADD built and packed, pulse's fields only", f"{timings['plain']:,.0f} ns"),
        ("XADD built and packed, with the idempotency field", f"{timings['marked']:,.0f} ns"),
        ("request bytes per entry (250-byte payload)", f"{size} + {grown[0]}-{grown[-1]}"),
    ]


async def _fill(client: aioredis.Redis, key: str, count: int) -> None:
    for first in range(0, count, 1000):
        pipe = client.pipeline(transaction=False)
        for _ in range(min(1000, count - first)):
            pipe.execute_command("XADD", key, "*", "n", "x", "p", PAYLOAD, "i", b"other")
        await pipe.execute()


async def _eval_usec(client: aioredis.Redis, args: list[Any]) -> float:
    await client.execute_command("CONFIG", "RESETSTAT")
    await client.execute_command(*args)
    stats = await client.info("commandstats")
    return float(stats["cmdstat_eval"]["usec_per_call"])


async def script_alone(url: str) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    client = aioredis.Redis.from_url(url, protocol=2)
    try:
        for window in WINDOWS:
            key = f"pulse:stream:retry-bench-{window}"
            await client.delete(key)
            seconds, micros = await client.execute_command("TIME")
            floor_ms = int(seconds) * 1000 + int(micros) // 1000 - 1
            await _fill(client, key, window - 1)
            command = xadd_args(key, Entry("s", "tool_end", PAYLOAD), 0, b"wanted")
            await client.execute_command(*command)  # the entry a lost reply left behind
            fields = command[command.index("*") + 1 :]
            found = resolve_args(key, [(b"wanted", fields)], maxlen=0, floor_ms=floor_ms)
            missing = resolve_args(key, [(b"absent", fields)], maxlen=0, floor_ms=floor_ms)
            found_us = statistics.median([await _eval_usec(client, found) for _ in range(5)])
            missing_us = await _eval_usec(client, missing)  # appends: run once
            rows.append(
                (f"window of {window:,} entries: found at the newest", f"{found_us:,.0f} µs")
            )
            rows.append((f"window of {window:,} entries: not there (full scan + XADD)",
                         f"{missing_us:,.0f} µs"))  # fmt: skip
            await client.delete(key)
    finally:
        await client.aclose()
    return rows


async def end_to_end(url: str) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    async with await RedisBackend.open(url) as backend:
        from tests.support.lost_replies import lose_replies  # on sys.path: see _redis

        conn = backend._ctx.commands
        stream = f"retry-bench-e2e-{time.time_ns()}"
        entry = [Entry(stream, "tool_end", PAYLOAD)]
        await backend.append(entry)
        for label, error in (
            ("plain append (no fault)", None),
            ("retried append, connection closed (no fence)", rex.ConnectionError),
            ("retried append, connection timed out (fenced first)", TimeoutError),
        ):
            times = []
            for _ in range(RUNS):
                if error is not None:
                    lose_replies(conn, error=error)
                start = time.perf_counter()
                await backend.append(entry)
                times.append(time.perf_counter() - start)
            rows.append((label, f"{statistics.median(times) * 1000:.2f} ms"))
        await backend.destroy(stream)
    return rows


def _table(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n{title}\n\n| | |\n|---|---:|")
    for label, value in rows:
        print(f"| {label} | {value} |")


def main(argv: list[str]) -> None:
    _table("First attempt (in process)", first_attempt())
    with _redis(argv[0] if argv else None) as url:
        _table("The resolving script alone (Redis time per call)", anyio.run(script_alone, url))
        _table("A retried append, end to end (median)", anyio.run(end_to_end, url))


if __name__ == "__main__":
    main(sys.argv[1:])
