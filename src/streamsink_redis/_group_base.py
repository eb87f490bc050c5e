"""What a group consumer (:class:`~._consumer.RedisGroupConsumer`) is built on: its names and
state, the plumbing of its commands on the backend's pool, and its calls that settle entries
(``ack``, ``nack``, ``touch``), which never read."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis.exceptions as rex

from streamsink.backend import DeliveryKey

from ._connection import execute
from ._deletion import DeletionWatch
from ._group_scripts import NACK_IDLE_MS, settle_args
from ._group_scripts import SETTLE_OWN as _SETTLE_OWN
from ._handle import Handle
from ._keepalive import KeepAlive
from ._positions import Script

__all__ = ["GroupConsumerBase"]


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

    async def nack(self, keys: Sequence[DeliveryKey]) -> None:
        """``XCLAIM ... IDLE <10 years> JUSTID`` of the named deliveries that are still this
        consumer's latest: claimable at once, delivery count unchanged (see :meth:`touch`)."""
        await self._settle_own(keys, NACK_IDLE_MS)

    async def touch(self, keys: Sequence[DeliveryKey]) -> None:
        """Restart the idle time of the named deliveries that are still this consumer's latest,
        delivery count unchanged (a script: XPENDING per id, then ``XCLAIM ... IDLE 0 JUSTID``
        of those). An entry another consumer claimed meanwhile stays that consumer's; a newer
        delivery to this consumer is told by the PEL's delivery count, which is the records'
        (an entry taken from pulse is claimed with RETRYCOUNT 2, see :mod:`._ownership`)."""
        n = await self._settle_own(keys, 0)
        if n < len(set(keys)):
            await self._check_listed(f"{len(set(keys)) - n} of {len(keys)} renewed were not its")

    async def _settle_own(self, keys: Sequence[DeliveryKey], idle_ms: int) -> int:
        self._check()
        await self._before_call()
        pairs = settle_args(keys)
        if not pairs:
            return 0
        with self._errors("ack"):
            args = [self._group, self._consumer, idle_ms, *pairs]
            return int(await self._script_on_pool(_SETTLE_OWN, args))
