"""``ConsumerReaper``: removes a group's consumers that hold nothing and were idle past
``SubscriberOptions.reap_idle`` (crashed or retired processes that would stay listed forever).

Once per group and process: every subscription of the group runs a reaper, but a turn taken by
one (recorded per backend object, stream and group) makes the others skip until the next is due,
so a thousand subscriptions of one group list its consumers once a period, not a thousand times.
The removal itself is the backend's atomic check-and-delete
(:meth:`~streamsink.backend.OperableBackend.delete_idle_consumer`), so a consumer that took an
entry between the listing and the removal is kept.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from typing import cast

import anyio

from .._exceptions import StreamsinkError
from ..backend import Backend, OperableBackend
from ._statistics import Counters

__all__ = ["ConsumerReaper"]

#: the shortest period between turns, whatever ``reap_idle`` says
_MIN_PERIOD = 0.05

# backend object -> (stream id, group) -> when the next turn is due (the event loop's clock)
_turns: weakref.WeakKeyDictionary[object, dict[tuple[str, str], float]] = (
    weakref.WeakKeyDictionary()
)


class ConsumerReaper:
    """Runs in a group subscription's task group until cancelled."""

    __slots__ = ("_backend", "_bound", "_counters", "_key", "_own", "_period", "_report")

    def __init__(
        self,
        backend: Backend,
        *,
        stream_id: str,
        group: str,
        consumer: str,
        bound: float,
        counters: Counters,
        report: Callable[[StreamsinkError], None],
    ) -> None:
        """Removes consumers of ``group`` on ``stream_id`` (other than ``consumer``, this
        subscription's) idle ``bound`` seconds; ``backend`` declares ``operations``."""
        self._backend = cast(OperableBackend, backend)
        self._bound = bound
        self._period = max(bound / 2, _MIN_PERIOD)
        self._key = (stream_id, group)
        self._own = consumer
        self._counters = counters
        self._report = report

    async def run(self) -> None:
        turns = self._turns()
        while True:
            now = anyio.current_time()
            due = turns.get(self._key, -math.inf)
            if due > now:
                await anyio.sleep(due - now)
                continue
            turns[self._key] = now + self._period
            await self.reap_once()
            await anyio.sleep(self._period)

    async def reap_once(self) -> int:
        """One turn: remove what is idle and empty now; returns how many were removed. Backend
        errors are reported (``on_error``) and the next turn tries again."""
        stream_id, group = self._key
        try:
            consumers = await self._backend.list_consumers(stream_id, group)
            removed = 0
            for consumer in consumers or ():
                if consumer.name == self._own or consumer.pending or consumer.idle < self._bound:
                    continue
                if await self._backend.delete_idle_consumer(
                    stream_id, group, consumer.name, min_idle=self._bound
                ):
                    removed += 1
        except StreamsinkError as exc:
            self._report(
                StreamsinkError(
                    f"removing idle consumers of group {group!r} on {stream_id!r} failed "
                    f"(tried again in {self._period:g} s): {exc}"
                )
            )
            return 0
        self._counters.consumers_reaped += removed
        return removed

    def _turns(self) -> dict[tuple[str, str], float]:
        try:
            return _turns.setdefault(self._backend, {})
        except TypeError:  # a backend that cannot be referred to weakly: turns of its own
            return {}
