"""Bounded memory: 200,000 events into a subscription whose consumer is 100x slower than the
producer, in a fresh process per backend; reports how much the process's peak RSS grew.

``python -m benchmarks._rss URL EVENTS`` prints one JSON line; :func:`check` runs it per backend.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import anyio
import psutil

from streamsink import StreamSink, StreamSubscriber, SubscriberOptions, open_backend

from . import _workload as wl

__all__ = ["RssResult", "check"]

SLOWDOWN = 100
BATCH = 100


@dataclass(frozen=True)
class RssResult:
    backend: str
    events: int
    consumed: int
    baseline_mb: float
    peak_mb: float
    seconds: float

    @property
    def growth_mb(self) -> float:
        return max(0.0, self.peak_mb - self.baseline_mb)


class _PeakSampler:
    """Samples this process's RSS every 2 ms in a thread and keeps the maximum."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._stop = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


def _maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


async def _measure(url: str, total: int) -> dict[str, float]:
    backend = await open_backend(url)
    session = f"rss-{os.getpid()}"
    stream_id = f"session/{session}"
    events = wl.events(session)
    sink = StreamSink(backend)
    subscriber = StreamSubscriber(backend, SubscriberOptions(group=wl.GROUP, buffer=BATCH))
    produced = consumed = 0
    producing = True
    try:
        async with subscriber.subscribe(stream_id) as received:

            async def consume() -> None:
                nonlocal consumed
                async for _event in received:
                    consumed += 1
                    while producing and consumed * SLOWDOWN > produced:  # noqa: ASYNC110
                        await anyio.sleep(0.001)  # a slow consumer: at most 1 per 100 sent

            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                for _ in range(20):  # warm up every path before the baseline
                    await sink.send_many(events)
                    produced += BATCH
                    await anyio.sleep(0.01)
                gc.collect()
                baseline, maxrss_before = psutil.Process().memory_info().rss, _maxrss()
                start = time.perf_counter()
                with _PeakSampler() as sampler:
                    for _ in range(total // BATCH):
                        await sink.send_many(events)
                        produced += BATCH
                    producing = False
                    tg.cancel_scope.cancel()
                elapsed = time.perf_counter() - start
        maxrss_after = _maxrss()
        # ru_maxrss is the whole life's peak: it only tells about this run if it moved.
        peak = max(sampler.peak, maxrss_after if maxrss_after > maxrss_before else 0)
        await backend.destroy(stream_id)
    finally:
        await backend.aclose()
    return {
        "consumed": consumed,
        "baseline_mb": baseline / 2**20,
        "peak_mb": peak / 2**20,
        "seconds": elapsed,
    }


def check(backend: str, url: str, events: int) -> RssResult:
    """Run the measurement in a fresh interpreter (a clean heap and a clean peak RSS)."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks._rss", url, str(events)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory check on {backend} failed:\n{done.stderr[-3000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return RssResult(backend=backend, events=events, **data)


def main() -> None:
    url, events = sys.argv[1], int(sys.argv[2])
    print(json.dumps(anyio.run(_measure, url, events, backend="asyncio")))


if __name__ == "__main__":
    main()
