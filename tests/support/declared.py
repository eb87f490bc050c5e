"""memory:// shaped like other brokers, to run the core and the kit on the optional parts of the
SPI that neither memory:// nor Redis has:

- :class:`SelfRedelivering`: redelivery on the broker's side after the grace period given at
  open, through ``read_new`` (no ``claim_idle``), and no per-member ownership (no
  ``read_own_pending``), as NATS JetStream has it;
- :class:`Terminating`: a native ``term``, recorded.

Each also comes broken, in the one way the check of that part must catch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs

from streamsink.backend import DEFAULT_ACK_GRACE_PERIOD, Capabilities, Record, StartPosition
from streamsink_memory import MemoryBackend

__all__ = ["LateTimes", "SelfRedelivering", "Terminating"]


class _Proxy:
    """A memory group consumer with some methods replaced."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @property
    def consumer(self) -> str:
        return str(self._inner.consumer)


class _RedeliveringConsumer(_Proxy):
    def __init__(self, inner: Any, grace: float) -> None:
        super().__init__(inner)
        self._grace = grace

    async def read_new(self, count: int, block: float) -> Sequence[Record]:
        # The broker's own redelivery: what waited a grace period unacknowledged comes first.
        redelivered = await self._inner.claim_idle(self._grace, count)
        if redelivered:
            return list(redelivered)
        # As it is: a RecordBatch carries the gap of entries trimmed unread.
        return await self._inner.read_new(count, block)  # type: ignore[no-any-return]

    async def claim_idle(self, min_idle: float, count: int) -> Sequence[Record]:
        raise AssertionError("claim_idle called on a backend that does not declare claims")

    async def read_own_pending(self, after: str | None, count: int) -> Sequence[Record]:
        raise AssertionError("read_own_pending called on a backend without own_pending")


class SelfRedelivering(MemoryBackend):
    """memory:// that redelivers by itself (``claims=False``) after the grace period given to
    ``open_group_consumer``, and has no ``own_pending``. ``broken``: it ignores that grace
    period (uses the default, 20 s)."""

    def __init__(self, *args: Any, broken: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._broken = broken

    @property
    def capabilities(self) -> Capabilities:
        return attrs.evolve(super().capabilities, claims=False, own_pending=False)

    async def open_group_consumer(  # type: ignore[override]
        self,
        stream_id: str,
        group: str,
        consumer: str,
        start: StartPosition,
        *,
        ack_grace_period: float = DEFAULT_ACK_GRACE_PERIOD,
    ) -> Any:
        inner = await super().open_group_consumer(stream_id, group, consumer, start)
        grace = DEFAULT_ACK_GRACE_PERIOD if self._broken else ack_grace_period
        return _RedeliveringConsumer(inner, grace)


class _TerminatingConsumer(_Proxy):
    def __init__(self, inner: Any, backend: Terminating) -> None:
        super().__init__(inner)
        self._backend = backend

    async def term(self, entry_ids: Sequence[str]) -> None:
        self._backend.terms.append(list(entry_ids))
        if not self._backend.broken:
            await self._inner.ack(entry_ids)


class Terminating(MemoryBackend):
    """memory:// with a native ``term`` (an ack, recorded in :attr:`terms`). ``broken``: its
    ``term`` does nothing."""

    def __init__(
        self,
        *args: Any,
        broken: bool = False,
        terms: list[list[str]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.broken = broken
        #: the ids of each term call (a list of the caller's, to share between backends)
        self.terms: list[list[str]] = [] if terms is None else terms

    @property
    def capabilities(self) -> Capabilities:
        return attrs.evolve(super().capabilities, term=True)

    async def open_group_consumer(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return _TerminatingConsumer(await super().open_group_consumer(*args, **kwargs), self)


class LateTimes(MemoryBackend):
    """memory:// whose ``entry_time`` is a millisecond late: ``at()`` of it misses the entry."""

    async def entry_time(self, stream_id: str, entry_id: str) -> datetime:
        return await super().entry_time(stream_id, entry_id) + timedelta(milliseconds=1)
