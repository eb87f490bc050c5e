"""``Handoff``: batches from a subscription's pump to the application's tasks.

An anyio memory object stream would do, but its ``receive()`` takes a checkpoint before looking
and then waits on an anyio event: two passes of the event loop and a few µs on the path of
every event that reaches an idle application. Here a getter that finds a batch takes it without
yielding, and one that must wait does so on a bare future on asyncio (an anyio event
elsewhere), woken by the put that brings the batch.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

import anyio

from ..lowlevel import Waiter, new_waiter

__all__ = ["Handoff"]

T = TypeVar("T")


class Handoff(Generic[T]):
    """An unbounded, closeable queue of batches for one event loop (the subscription bounds
    what it holds, in events). ``put`` never blocks; ``get`` waits for a batch."""

    __slots__ = ("_batches", "_closed", "_waiters")

    def __init__(self) -> None:
        self._batches: deque[T] = deque()
        self._closed = False
        self._waiters: list[Waiter] = []

    def put(self, batch: T) -> bool:
        """Queue a batch and wake a waiting getter; True if there was one.

        :raises anyio.ClosedResourceError: after :meth:`close`.
        """
        if self._closed:
            raise anyio.ClosedResourceError
        self._batches.append(batch)
        return self._wake()

    def close(self) -> None:
        """No more batches: getters take what is queued, then get ``EndOfStream``."""
        self._closed = True
        while self._waiters:
            self._wake()

    def get_nowait(self) -> T:
        """The oldest batch.

        :raises anyio.WouldBlock: none is queued (yet).
        :raises anyio.EndOfStream: none is queued and the handoff is closed.
        """
        if self._batches:
            return self._batches.popleft()
        if self._closed:
            raise anyio.EndOfStream
        raise anyio.WouldBlock

    @property
    def empty(self) -> bool:
        """No batch is queued."""
        return not self._batches

    def poke(self) -> bool:
        """Wake a task waiting in :meth:`wait` without a batch; True if there was one."""
        return self._wake()

    async def wait(self) -> None:
        """Wait until a batch is put, the handoff is closed, or :meth:`poke` is called (returns
        at once when a batch is queued or the handoff is closed)."""
        if self._batches or self._closed:
            return
        waiter = new_waiter()
        self._waiters.append(waiter)
        try:
            await waiter.wait()
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    async def get(self) -> T:
        """The oldest batch, waiting for one if needed (a checkpoint only when it waits).

        :raises anyio.EndOfStream: the handoff is closed and empty.
        """
        while True:
            try:
                return self.get_nowait()
            except anyio.WouldBlock:
                await self.wait()

    def _wake(self) -> bool:
        if not self._waiters:
            return False
        self._waiters.pop(0).set()
        return True
