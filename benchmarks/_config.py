"""How much work each scenario does, for a quick and for a full run."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Config"]


@dataclass(frozen=True)
class Config:
    """Sizes of one run. Event counts are per scenario run, before the backend factor."""

    repeats: int
    send_seq: int  # sequential awaited sends / XADDs (one round trip each)
    send_concurrent: int  # total over the 64 tasks
    send_batch: int  # pipelined / send_many, in batches of 100
    consume: int  # prefilled entries read by a consumer group, acked in batches
    manual: int  # one awaited ack per delivery, 64 workers
    manual_seq: int  # one awaited XACK per entry, sequential (the slow raw baseline)
    memory_e2e: int  # memory:// send -> subscription, concurrently
    latency_seconds: float  # at 1,000 events/s
    rss_events: int  # the bounded-memory check
    fakeredis_factor: float  # fakeredis is ~10x slower: scale its counts down
    memory_factor: int  # memory:// is ~10x faster: scale its counts up

    @classmethod
    def quick(cls) -> Config:
        return cls(
            repeats=3,
            send_seq=1_500,
            send_concurrent=4_480,
            send_batch=8_000,
            consume=8_000,
            manual=4_480,
            manual_seq=1_500,
            memory_e2e=15_000,
            latency_seconds=0.6,
            rss_events=200_000,
            fakeredis_factor=0.2,
            memory_factor=4,
        )

    @classmethod
    def full(cls) -> Config:
        return cls(
            repeats=5,
            send_seq=8_000,
            send_concurrent=19_200,
            send_batch=30_000,
            consume=30_000,
            manual=19_200,
            manual_seq=4_000,
            memory_e2e=60_000,
            latency_seconds=3.0,
            rss_events=200_000,
            fakeredis_factor=0.2,
            memory_factor=4,
        )

    def scaled(self, count: int, backend: str) -> int:
        """``count`` for ``backend``: fakeredis runs fewer events (at least 1,000), memory://
        more (it is that much faster)."""
        if backend == "fakeredis":
            return max(1_000, int(count * self.fakeredis_factor))
        if backend == "memory":
            return count * self.memory_factor
        return count
