"""``BackendCalls``: the backend calls of one subscription, made resilient.

A call that fails because the backend is unreachable is retried with jittered exponential
backoff (:class:`~streamsink._backoff.Backoff`) and counted; a consumer group that vanished
under the consumer (a Redis restart without persistence, ``FLUSHALL``) is re-created, then the
call retried (docs/contract.md rule 15). Failures lasting past ``reconnect_timeout`` end the
subscription with :class:`~streamsink.SubscriptionError` (rule 12). A destroyed stream is a
clean end, never retried.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .._backoff import Backoff
from .._exceptions import BackendUnavailableError, StreamsinkError
from ..backend import GroupConsumer, GroupLostError, StartPosition, StreamDestroyedError
from ._statistics import Counters

__all__ = ["BackendCalls"]

log = logging.getLogger("streamsink")
T = TypeVar("T")


class BackendCalls:
    """Retrying calls for one subscription, and the group re-creation they need."""

    __slots__ = (
        "_backoff",
        "_counters",
        "_group",
        "_report",
        "_start",
        "_stream_id",
        "consumer",
        "last_read",
    )

    def __init__(
        self,
        *,
        stream_id: str,
        group: str | None,
        start: StartPosition,
        reconnect_timeout: float,
        counters: Counters,
        report: Callable[[StreamsinkError], None],
    ) -> None:
        self._stream_id = stream_id
        self._group = group
        self._start = start
        self._backoff = Backoff(budget=reconnect_timeout)
        self._counters = counters
        self._report = report
        #: the group consumer, once opened (None for a fan-out reader)
        self.consumer: GroupConsumer | None = None
        #: id of the newest entry read from the group, where a re-created group resumes
        self.last_read: str | None = None

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``await fn(*args)``, retried while the backend is unreachable or the group lost.

        :raises SubscriptionError: failures lasted past ``reconnect_timeout``.
        :raises StreamDestroyedError: the stream was destroyed.
        :raises StreamsinkError: any other error of the backend, at once.
        """
        while True:
            try:
                result = await fn(*args)
            except StreamDestroyedError:
                raise
            except GroupLostError as exc:
                self._report(exc)
                await self._backoff.wait(exc)
                await self._recreate_group()
            except BackendUnavailableError as exc:
                self._counters.retries += 1
                self._report(exc)
                await self._backoff.wait(exc)
            else:
                self._backoff.reset()
                return result

    async def _recreate_group(self) -> None:
        consumer = self.consumer
        if consumer is None:
            return
        # Resume after the last entry we read: nothing newer is lost, nothing older replayed.
        # Having read nothing, never re-create at "newest": entries appended since the group
        # vanished (FLUSHALL, a restart without persistence) would be skipped. From the oldest,
        # a wiped stream holds only those; a stream whose group alone was destroyed is replayed.
        start = StartPosition.after(self.last_read) if self.last_read else self._start
        if start.kind == "newest":
            start = StartPosition.oldest()
        try:
            await consumer.ensure_group(start)
        except StreamDestroyedError:
            raise
        except BackendUnavailableError as exc:
            self._report(exc)  # the next attempt backs off further
            return
        self._counters.groups_recreated += 1
        log.warning(
            "consumer group %r on %r was re-created at %s", self._group, self._stream_id, start
        )
