"""The backends the kit's parity machine (``streamsink.testing.run_parity``) runs on here, each
with a way to make time pass for its pending entries and to show its pending list."""

from __future__ import annotations

import uuid
from typing import Any

from streamsink.backend import Backend
from streamsink.testing import FakeClock, ParityTarget
from streamsink_memory import MemoryBackend, MemoryBroker

__all__ = ["FakeRedisTarget", "MemoryTarget", "RedisTarget"]


class MemoryTarget(ParityTarget):
    """A private broker on a fake clock: time passes when the machine says so."""

    name = "memory"

    async def open(self) -> Backend:
        self.clock = FakeClock(1000.0)
        self.broker = MemoryBroker(clock=self.clock)
        return MemoryBackend(self.broker)

    async def advance(self, backend: Backend, stream: str, group: str, seconds: float) -> None:
        self.clock.advance(seconds)

    async def pending(
        self, backend: Backend, stream: str, group: str
    ) -> dict[str, tuple[str, int]] | None:
        return {
            p.entry_id: (p.consumer, p.delivery_count) for p in self.broker.pending(stream, group)
        }


class RedisTarget(ParityTarget):
    """A Redis server. Time passes for pending entries by re-claiming each to its own owner with
    ``IDLE <idle + seconds>`` and ``JUSTID`` (which keeps the delivery count): the server's own
    clock moves only by the milliseconds the test takes."""

    name = "redis"

    def __init__(self, url: str) -> None:
        self.url = url

    def _raw(self) -> Any:
        import redis.asyncio as aioredis

        return aioredis.Redis.from_url(self.url, protocol=2)

    async def open(self) -> Backend:
        from streamsink_redis import RedisBackend

        self.raw = self._raw()
        return await RedisBackend.open(self.url + "?maxlen=0")

    async def advance(self, backend: Backend, stream: str, group: str, seconds: float) -> None:
        key = f"pulse:stream:{stream}"
        for item in await self.raw.xpending_range(key, group, "-", "+", 10_000):
            idle = int(item["time_since_delivered"] + seconds * 1000)
            await self.raw.xclaim(
                key, group, item["consumer"], 0, [item["message_id"]], idle=idle, justid=True
            )

    async def pending(
        self, backend: Backend, stream: str, group: str
    ) -> dict[str, tuple[str, int]] | None:
        key = f"pulse:stream:{stream}"
        return {
            item["message_id"].decode(): (item["consumer"].decode(), item["times_delivered"])
            for item in await self.raw.xpending_range(key, group, "-", "+", 10_000)
        }

    async def cleanup(self, backend: Backend, stream: str) -> None:
        await super().cleanup(backend, stream)
        await self.raw.aclose()


class FakeRedisTarget(RedisTarget):
    """fakeredis, through the same Redis backend code."""

    name = "fakeredis"

    def __init__(self) -> None:
        super().__init__(f"fakeredis://parity-{uuid.uuid4().hex[:8]}")

    def _raw(self) -> Any:
        import fakeredis

        from streamsink_redis._connection import fake_server

        return fakeredis.FakeAsyncRedis(server=fake_server(self.url.split("//")[1]), protocol=2)
