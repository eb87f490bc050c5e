"""Read-ahead behind a stuck handler, in bytes: 40 entries of 8 MB, a handler that never finishes
the first one; how much the subscriber's process grows, with the default ``buffer_bytes`` and with
read-ahead bounded in events only (what streamsink did before ``buffer_bytes``).

Each measurement runs in a fresh interpreter (a clean heap and a clean peak RSS)::

    python -m benchmarks.large_entries [REDIS_URL]     # memory://, and Redis when a URL is given
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time

import anyio
import psutil

from streamsink import (
    StartPosition,
    StreamEvent,
    StreamSink,
    StreamSubscriber,
    SubscriberOptions,
    open_backend,
)
from streamsink._options import DEFAULT_BUFFER_BYTES

ENTRIES = 40
SIZE = 8 * 2**20
UNBOUNDED = 2**50  # in effect no byte budget: read-ahead bounded by `buffer` (64) events only
SETTLE = 8.0  # seconds the handler stays stuck while read-ahead fills


async def _measure(url: str, buffer_bytes: int) -> dict[str, float | int]:
    backend = await open_backend(url)
    session = f"large-{os.getpid()}"
    blob = "x" * SIZE
    sink = StreamSink(backend)
    for index in range(ENTRIES):
        await sink.send(StreamEvent("tool_end", "run", session, f"k{index}", {"blob": blob}))
    del blob
    gc.collect()
    process = psutil.Process()
    baseline = process.memory_info().rss
    options = SubscriberOptions(group="large", buffer_bytes=buffer_bytes, max_block=0.05)
    subscriber = StreamSubscriber(backend, options)
    peak = baseline
    try:
        async with subscriber.subscribe(f"session/{session}", start=StartPosition.oldest()) as sub:
            await sub.__anext__()  # the handler is stuck on this one from here on
            deadline = time.monotonic() + SETTLE
            while time.monotonic() < deadline:
                peak = max(peak, process.memory_info().rss)
                await anyio.sleep(0.01)
            read = sub.statistics().received
        await backend.destroy(f"session/{session}")
    finally:
        await backend.aclose()
    return {"read_ahead_entries": read, "growth_mb": round((peak - baseline) / 2**20, 1)}


def _run(url: str, buffer_bytes: int) -> dict[str, float | int]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.large_entries", "--one", url, str(buffer_bytes)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: list[str]) -> None:
    if argv[:1] == ["--one"]:
        print(json.dumps(anyio.run(_measure, argv[1], int(argv[2]), backend="asyncio")))
        return
    urls = ["memory://", *argv[:1]]
    print(f"{ENTRIES} entries of {SIZE // 2**20} MB behind a stuck handler (peak RSS growth)\n")
    print("| backend | buffer_bytes | entries read ahead | RSS growth (MB) |")
    print("|---|---|---:|---:|")
    for url in urls:
        name = url.split("://")[0]
        for label, budget in (
            (f"{DEFAULT_BUFFER_BYTES // 2**20} MiB (default)", DEFAULT_BUFFER_BYTES),
            ("none (events only, as before)", UNBOUNDED),
        ):
            result = _run(url, budget)
            print(f"| {name} | {label} | {result['read_ahead_entries']} | {result['growth_mb']} |")


if __name__ == "__main__":
    main(sys.argv[1:])
