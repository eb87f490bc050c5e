"""What a group consumer (:class:`~._consumer.RedisGroupConsumer`) is built on: its names and
state, the plumbing of its commands on the backend's pool, and its calls that settle entries
(``ack``, ``nack``, ``touch``), which never read."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis.exceptions as rex

from ._connection import execute
from ._deletion import DeletionWatch
from ._group_scripts import TOUCH_OWN as _TOUCH_OWN
from ._handle import Handle
from ._keepalive import KeepAlive
from ._positions import Script

__all__ = ["NACK_IDLE_MS", "GroupConsumerBase"]

NACK_IDLE_MS = 10 * 365 * 24 * 3600 * 1000
"""Idle time (10 years) given to nacked entries so that any ``claim_idle`` takes them at once.
Redis caps an IDLE larger than its clock, so this stays well below the current Unix time in ms."""


class GroupConsumerBase(Handle):
    """The part of a group consumer that settles entries; :class:`~._consumer.RedisGroupConsumer`
    sets the attributes below and adds the reads and claims."""

    _group: str
    _consumer: str
    # Entries it may hold pending, counted from above (read, claimed, not acked).
    _held: int
    _watch: DeletionWatch
    _keepalive: KeepAlive | None

    async def _before_call(self) -> None:
        """Run first by every call (see :class:`~._consumer.RedisGroupConsumer`)."""
        raise NotImplementedError

    @staticmethod
    @contextmanager
    def _reading(keepalive: KeepAlive | None) -> Iterator[None]:
        """Around a blocking read whose wait :meth:`KeepAlive.cut` gave: it ended."""
        try:
            yield
        finally:
            if keepalive is not None:
                keepalive.read_ended()

    async def _call(self, *args: Any) -> Any:
        return await execute(self._ctx.client, *args)

    async def _script_on_pool(
        self, script: Script, args: Sequence[Any], keys: Sequence[str] | None = None
    ) -> Any:
        keys = (self._key,) if keys is None else keys
        try:
            return await self._call(*script.evalsha(keys, args))
        except rex.NoScriptError:
            pass  # not cached (a restarted server): send the text
        return await self._call(*script.eval(keys, args))

    def _listing(self) -> list[Any]:
        """``XINFO CONSUMERS`` of the group: read-only, so it works while Redis is out of
        memory (``XGROUP CREATECONSUMER`` would say as much, but is refused then)."""
        return ["XINFO", "CONSUMERS", self._key, self._group]

    def _check_listing(self, reply: Any, how: str) -> None:
        held = self._watch.listing(reply, how, keepalive=self._keepalive is not None)
        if held is not None:
            self._held = held  # the server's count, exact as of the listing

    async def _check_listed(self, how: str) -> None:
        """After an ack or a touch found fewer of its ids than given: raise GroupLostError if the
        group is gone, note a deletion if the group no longer lists this consumer."""
        await self._call("XPENDING", self._key, self._group)  # NOGROUP if it is gone
        reply = await self._call("XINFO", "CONSUMERS", self._key, self._group)
        self._check_listing(reply, f"{how}, and XINFO CONSUMERS no longer lists it")
        error = self._watch.take()
        if error is not None:
            raise error

    async def ack(self, entry_ids: Sequence[str]) -> None:
        """One ``XACK`` for the batch, on the backend's command connection. When Redis acked fewer
        ids than given (already acked, or the group is gone), the group is checked so a lost
        group raises GroupLostError, and a group that no longer lists this consumer raises
        ConsumerDeletedError (once per deletion; the ack itself was done)."""
        self._check()
        await self._before_call()
        ids = list(dict.fromkeys(entry_ids))
        if not ids:
            return
        with self._errors("ack"):
            (acked,) = await self._ctx.commands.run([("XACK", self._key, self._group, *ids)])
            if isinstance(acked, rex.ResponseError):
                raise acked
            self._held = max(0, self._held - int(acked))
            if int(acked) < len(ids):
                missed = len(ids) - int(acked)
                await self._check_listed(f"{missed} of {len(ids)} acks found nothing pending")

    async def nack(self, entry_ids: Sequence[str]) -> None:
        """``XCLAIM ... IDLE <10 years> JUSTID``: claimable at once, delivery count unchanged."""
        self._check()
        await self._before_call()
        await self._set_idle(entry_ids, NACK_IDLE_MS)

    async def touch(self, entry_ids: Sequence[str]) -> None:
        """Restart the idle time of the entries among ``entry_ids`` this consumer still owns,
        delivery count unchanged (a script: XPENDING per id, then ``XCLAIM ... IDLE 0 JUSTID``
        of the owned ones). An entry another consumer claimed meanwhile stays that consumer's."""
        self._check()
        await self._before_call()
        ids = list(dict.fromkeys(entry_ids))
        if not ids:
            return
        with self._errors("ack"):
            owned = await self._script_on_pool(_TOUCH_OWN, [self._group, self._consumer, 0, *ids])
            if int(owned) < len(ids):
                missed = len(ids) - int(owned)
                await self._check_listed(f"{missed} of {len(ids)} entries it renewed were not its")

    async def _set_idle(self, entry_ids: Sequence[str], idle_ms: int) -> None:
        self._check()
        ids = list(dict.fromkeys(entry_ids))
        if not ids:
            return
        with self._errors("ack"):
            await self._call(
                "XCLAIM", self._key, self._group, self._consumer, 0, *ids,
                "IDLE", idle_ms, "JUSTID",
            )  # fmt: skip
