"""Helpers shared by the memory backend tests."""

from __future__ import annotations

from collections.abc import Sequence

import anyio

from streamsink.backend import Entry, Record
from streamsink_memory import MemoryBroker


class FakeClock:
    """A clock callable whose time moves only through :meth:`advance` or assignment."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def entries(stream_id: str, count: int, *, start: int = 0) -> list[Entry]:
    """``count`` entries named ``e<i>`` with payload ``b"<i>"``."""
    return [Entry(stream_id, f"e{i}", str(i).encode()) for i in range(start, start + count)]


def payloads(records: Sequence[Record]) -> list[bytes | None]:
    return [record.payload for record in records]


def ids(records: Sequence[Record]) -> list[str]:
    return [record.entry_id for record in records]


async def wait_blocked(broker: MemoryBroker, count: int = 1) -> None:
    """Wait until ``count`` reads are blocked on the broker (fails after 5 s)."""
    with anyio.fail_after(5):
        # Polling a statistic is the point here: it proves the waiter was registered.
        while broker.statistics().blocked_readers != count:  # noqa: ASYNC110
            await anyio.sleep(0.001)
