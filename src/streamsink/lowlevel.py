"""Runtime fast paths shared by the core and the backends: the clock, a checkpoint and a
one-shot waiter, each on asyncio without anyio's per-call lookup of the running library.

anyio finds the running async library on every ``current_time()``, ``checkpoint()`` and
``Event()`` (about 0.6 µs each, ``python -m benchmarks.micro``); a ``memory://`` send or a woken
read costs a few µs in all, so the lookups are a tenth of it. A running asyncio loop in this
thread means anyio runs on asyncio (its trio backend runs no asyncio loop): then these use the
loop directly. Anywhere else they are exactly anyio's calls. Backends may import this module.
"""

from __future__ import annotations

import asyncio
import math
from asyncio import _get_running_loop, sleep
from collections.abc import Callable
from time import monotonic
from typing import Protocol, final

import anyio
from anyio.lowlevel import checkpoint as anyio_checkpoint

__all__ = ["Waiter", "checkpoint", "clock", "new_waiter", "running_loop"]

_base_loop_time = asyncio.BaseEventLoop.time


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The asyncio loop running in this thread, or None (under trio, or outside a loop)."""
    return _get_running_loop()


async def checkpoint() -> None:
    """Yield to the event loop, raising if the task's cancel scope is cancelled: exactly
    :func:`anyio.lowlevel.checkpoint`."""
    if _get_running_loop() is not None:
        await sleep(0)
    else:
        await anyio_checkpoint()


def clock() -> Callable[[], float]:
    """A function giving anyio's current time (:func:`anyio.current_time`), for the event loop
    running now: on asyncio, the loop's own ``time``, or :func:`time.monotonic` itself where
    that is all the loop's ``time`` does (``asyncio.BaseEventLoop.time``, not overridden): a
    call of a C function instead of a Python method, on the path of every event a subscription
    hands out. Call it once per task or object, then call what it returns as often as needed."""
    loop = _get_running_loop()
    if loop is None:
        return anyio.current_time
    if type(loop).time is _base_loop_time and "time" not in vars(loop):
        return monotonic
    return loop.time


class Waiter(Protocol):
    """A one-shot wake-up for one task, made by :func:`new_waiter`: :meth:`set` wakes
    :meth:`wait` (from the same event loop; never from another thread). A cancelled wait raises
    the runtime's cancellation exception, as an anyio event's would."""

    def set(self) -> None:
        """Wake the wait (idempotent)."""

    def is_set(self) -> bool:
        """Whether :meth:`set` was called (and not only the deadline reached)."""

    async def wait(self, deadline: float = math.inf) -> bool:
        """Until :meth:`set`, or until anyio's clock reaches ``deadline``; True when set."""


def new_waiter() -> Waiter:
    """A :class:`Waiter` for the running event loop: on asyncio a bare future with a loop timer
    for its deadline (a fraction of the cost of an anyio event in a cancel scope, on the path
    every woken read takes), elsewhere an :class:`anyio.Event` in a cancel scope."""
    loop = _get_running_loop()
    return _EventWaiter() if loop is None else _FutureWaiter(loop)


@final
class _FutureWaiter:
    __slots__ = ("_future", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._future: asyncio.Future[bool] = loop.create_future()

    def set(self) -> None:
        if not self._future.done():
            self._future.set_result(True)

    def is_set(self) -> bool:
        future = self._future
        return future.done() and not future.cancelled() and future.result()

    async def wait(self, deadline: float = math.inf) -> bool:
        if deadline == math.inf:
            return await self._future
        timer = self._loop.call_at(deadline, self._expire)
        try:
            return await self._future
        finally:
            timer.cancel()

    def _expire(self) -> None:
        if not self._future.done():
            self._future.set_result(False)


@final
class _EventWaiter:
    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = anyio.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self, deadline: float = math.inf) -> bool:
        with anyio.CancelScope(deadline=deadline):
            await self._event.wait()
        return self._event.is_set()
