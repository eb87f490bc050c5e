"""Share backend round trips between concurrent callers (sends, acks) without delaying a lone one.

A caller with nobody in flight goes straight to the backend. Callers arriving while a call is in
flight join one batch; when the call in flight returns, that batch goes out as the next call, led
by its first member. Each caller gets back exactly its own results, and a task's own calls stay in
order because it awaits each before making the next.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import anyio

__all__ = ["Coalescer"]

T = TypeVar("T")
R = TypeVar("R")


class _Batch(Generic[T, R]):
    __slots__ = ("done", "error", "items", "results", "turn")

    def __init__(self) -> None:
        self.items: list[T] = []
        self.results: Sequence[R] = ()
        self.error: BaseException | None = None
        self.turn = anyio.Event()  # the call in flight returned: this batch may go
        self.done = anyio.Event()  # this batch's call returned


class Coalescer(Generic[T, R]):
    """Run ``call(items) -> results`` (one result per item) with concurrent callers batched."""

    def __init__(self, call: Callable[[Sequence[T]], Awaitable[Sequence[R]]]) -> None:
        self._call = call
        self._in_flight = False
        self._collecting: _Batch[T, R] | None = None

    def claim(self) -> bool:
        """Take the in-flight slot if it is free: the caller then makes its call directly (one
        coroutine less than :meth:`submit`) and must call :meth:`release` once it returned."""
        if self._in_flight:
            return False
        self._in_flight = True
        return True

    async def submit(self, items: Sequence[T]) -> Sequence[R]:
        """Run ``items`` through the call, alone or with concurrent callers; return their results.

        Errors of a shared call are raised to every caller in it. A cancelled caller's items may
        still be written by the shared call (as for any call cancelled in flight).
        """
        if not self._in_flight:
            self._in_flight = True
            try:
                return await self._call(items)
            finally:
                self.release()
        batch = self._collecting
        if batch is None:
            batch = self._collecting = _Batch()
            start = 0
            batch.items.extend(items)
            # The leader must run the batch even if it is cancelled, or its followers would hang.
            with anyio.CancelScope(shield=True):
                await batch.turn.wait()
                try:
                    batch.results = await self._call(batch.items)
                except BaseException as exc:
                    batch.error = exc
                finally:
                    batch.done.set()
                    self.release()
        else:
            start = len(batch.items)
            batch.items.extend(items)
            await batch.done.wait()
        if batch.error is not None:
            raise batch.error
        return batch.results[start : start + len(items)]

    def release(self) -> None:
        """Free the in-flight slot (taken by :meth:`claim` or by :meth:`submit` itself); a batch
        waiting for it goes next."""
        batch = self._collecting
        if batch is None:
            self._in_flight = False
        else:
            # Hand the in-flight slot straight to the waiting batch, so a newcomer cannot jump it.
            self._collecting = None
            batch.turn.set()
