"""The backends the parity machine runs on, each with a way to make time pass for its pending
entries and to read its pending list and dead letters."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from streamsink.backend import Backend, StartPosition
from streamsink_memory import MemoryBackend, MemoryBroker

__all__ = ["TARGETS", "Target"]


class Target:
    name = "abstract"
    examples = 60

    def prepare(self, request: pytest.FixtureRequest) -> None:
        """Get what the target needs from pytest (fixtures), or skip."""

    def unique_stream(self) -> str:
        return f"parity/{uuid.uuid4().hex[:12]}"

    async def open(self) -> Backend:
        raise NotImplementedError

    async def advance(self, backend: Backend, stream: str, group: str, seconds: float) -> None:
        raise NotImplementedError

    async def pending(
        self, backend: Backend, stream: str, group: str
    ) -> dict[str, tuple[str, int]]:
        raise NotImplementedError

    async def dead_letters(self, backend: Backend, stream: str) -> list[str]:
        reader = await backend.open_reader(stream, StartPosition.oldest())
        try:
            return [(r.payload or b"").decode() for r in await reader.read(10_000, 0)]
        finally:
            await reader.aclose()

    async def cleanup(self, backend: Backend, stream: str) -> None:
        await backend.destroy(stream)
        await backend.destroy(f"{stream}:dlq")


class _FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class MemoryTarget(Target):
    name = "memory"
    examples = 150

    async def open(self) -> Backend:
        self.clock = _FakeClock()
        self.broker = MemoryBroker(clock=self.clock)
        return MemoryBackend(self.broker)

    async def advance(self, backend: Backend, stream: str, group: str, seconds: float) -> None:
        self.clock.now += seconds

    async def pending(
        self, backend: Backend, stream: str, group: str
    ) -> dict[str, tuple[str, int]]:
        return {
            p.entry_id: (p.consumer, p.delivery_count) for p in self.broker.pending(stream, group)
        }


class RedisTarget(Target):
    """A real redis-server (the session's private one). Time passes for pending entries by
    re-claiming each to its own owner with ``IDLE <idle + seconds>`` and ``JUSTID`` (which keeps
    the delivery count): the server's own clock moves only by the milliseconds the test takes."""

    name = "redis"
    examples = 40

    def prepare(self, request: pytest.FixtureRequest) -> None:
        self.url = str(request.getfixturevalue("redis_url"))

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
    ) -> dict[str, tuple[str, int]]:
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

    def prepare(self, request: pytest.FixtureRequest) -> None:
        self.url = f"fakeredis://parity-{uuid.uuid4().hex[:8]}"

    def _raw(self) -> Any:
        import fakeredis

        from streamsink_redis._connection import fake_server

        return fakeredis.FakeAsyncRedis(server=fake_server(self.url.split("//")[1]), protocol=2)


TARGETS: list[Any] = [MemoryTarget, FakeRedisTarget, RedisTarget]
