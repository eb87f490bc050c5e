"""How a memory group read gathers a batch on asyncio: one callback per pass, not a task wake-up
per entry (see :meth:`~._handles.MemoryGroupConsumer._gather`)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._group import Group
    from ._stream import Stream

__all__ = ["gather_on_asyncio"]


async def gather_on_asyncio(
    loop: asyncio.AbstractEventLoop, stream: Stream, group: Group, wanted: int
) -> None:
    """:meth:`MemoryGroupConsumer._gather` on asyncio: a callback, not the reading task, checks
    on each pass whether the writer appended again. The task wakes once per batch instead of
    once per entry, which halves the cost of a busy ``memory://`` subscription."""
    done = loop.create_future()
    start = last = stream.appended

    def check() -> None:
        nonlocal last
        if done.done():  # the reader was cancelled
            return
        appended = stream.appended
        if (
            appended == last
            or appended - start >= wanted
            or stream.destroyed
            or stream.lost
            or group.lost
        ):
            done.set_result(None)
        else:
            last = appended
            loop.call_soon(check)

    loop.call_soon(check)
    await done
