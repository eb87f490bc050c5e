"""``XPENDING key group`` summaries asked at one moment by many group consumers of a backend,
sent in one pipeline (:class:`PendingSummaries`).

An idle group costs one summary per grace period (the core's claim schedule), and the core
schedules the looks of idle groups on a shared grid of its clock, so a process with many idle
groups asks for many summaries in the same pass of the event loop. One at a time, each took a
pooled connection and a round trip of its own (most of the CPU an idle group costs); together
they take one connection, one write and one read of all the replies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, final

import anyio
import anyio.lowlevel
import redis.exceptions as rex

__all__ = ["PendingSummaries"]


@final
class _Ask:
    __slots__ = ("done", "error", "group", "key", "reply")

    def __init__(self, key: str, group: str) -> None:
        self.key = key
        self.group = group
        self.done = anyio.Event()
        self.reply: Any = None
        self.error: BaseException | None = None

    def answer(self, reply: Any) -> None:
        if isinstance(reply, Exception):
            self.error = reply
        else:
            self.reply = reply
        self.done.set()


@final
class PendingSummaries:
    """Batches ``XPENDING key group`` (the summary form) of concurrent callers: the first of a
    batch waits one pass of the event loop for the others, then sends them all in one pipeline
    (no transaction) and hands each caller its own reply."""

    __slots__ = ("_pipeline", "_waiting")

    def __init__(self, pipeline: Callable[[], Any]) -> None:
        """``pipeline``: a new non-transactional redis-py pipeline on the backend's pool."""
        self._pipeline = pipeline
        self._waiting: list[_Ask] = []

    async def xpending(self, key: str, group: str) -> Any:
        """The raw reply of ``XPENDING key group``.

        :raises redis.exceptions.ResponseError: the server's error reply (``NOGROUP``, say).
        :raises redis.exceptions.RedisError: the pipeline failed (a connection error, say).
        """
        ask = _Ask(key, group)
        self._waiting.append(ask)
        if len(self._waiting) == 1:
            await self._send(ask)
        else:
            await ask.done.wait()
        if ask.error is not None:
            raise ask.error
        return ask.reply

    async def _send(self, own: _Ask) -> None:
        cancelled: BaseException | None = None
        try:
            await anyio.lowlevel.checkpoint()  # the others woken in this pass ask meanwhile
        except BaseException as exc:
            cancelled = exc
        batch, self._waiting = self._waiting, []
        if cancelled is not None:
            self._fail([ask for ask in batch if ask is not own], cancelled)
            raise cancelled
        try:
            pipe = self._pipeline()
            for ask in batch:
                pipe.execute_command("XPENDING", ask.key, ask.group)
            replies = await pipe.execute(raise_on_error=False)
        except BaseException as exc:
            self._fail([ask for ask in batch if ask is not own], exc)
            raise
        for ask, reply in zip(batch, replies, strict=True):
            ask.answer(reply)

    @staticmethod
    def _fail(batch: list[_Ask], exc: BaseException) -> None:
        """The others of a batch whose sender failed or was cancelled: each fails as after a
        lost connection (the core looks again a claim interval later)."""
        error = (
            exc
            if isinstance(exc, rex.RedisError)
            else rex.ConnectionError(f"the summary batch was not sent ({type(exc).__name__})")
        )
        for ask in batch:
            ask.error = error
            ask.done.set()
