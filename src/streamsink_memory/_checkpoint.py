"""``checkpoint()``: anyio's, minus its per-call event-loop lookup on asyncio.

``anyio.lowlevel.checkpoint()`` finds the running async library on every call (about 0.6 µs
here, ``python -m benchmarks.micro``), then on asyncio awaits ``asyncio.sleep(0)``. A
``memory://`` send costs a few µs in all and takes one checkpoint, so the lookup is a tenth of
it. A running asyncio loop in this thread
means anyio runs on asyncio (its trio backend runs no asyncio loop); anything else goes through
anyio as usual.
"""

from __future__ import annotations

from asyncio import _get_running_loop, sleep

from anyio.lowlevel import checkpoint as anyio_checkpoint

__all__ = ["checkpoint"]


async def checkpoint() -> None:
    """Yield to the event loop, raising if the task's cancel scope is cancelled: exactly
    :func:`anyio.lowlevel.checkpoint`."""
    if _get_running_loop() is not None:
        await sleep(0)
    else:
        await anyio_checkpoint()
