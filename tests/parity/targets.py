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


TARGETS: list[Any] = [MemoryTarget]
