"""``Acker``: acknowledgements of a group subscription, coalesced, off the read path.

Auto mode acknowledges an event once the application is done with it (docs/contract.md rule 8):
the subscription appends its id to :attr:`Acker.done` when the application asks for the next
event or leaves the loop normally, and the acker task sends what accumulated while the pump
reads on, so an ack's round trip never holds up the next read. Entries a group's topic filter
drops are acknowledged the same way (rule 17), in manual mode too. Manual acks and the acks of
dead letters go through the same :class:`~streamsink._coalesce.Coalescer`, so concurrent ones
share round trips; on a backend with a native terminate (``Capabilities.term``) dead letters are
settled by ``term`` instead, through an acker of their own (:meth:`Acker.for_dead_letters`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import cast

import anyio

from .._coalesce import Coalescer
from .._exceptions import StreamsinkError
from ..backend import GroupConsumer, StreamDestroyedError, TerminatingGroupConsumer
from ._calls import BackendCalls
from ._statistics import Counters

__all__ = ["Acker"]

log = logging.getLogger("streamsink")


class Acker:
    """Sends acks for one subscription's consumer (none for a fan-out reader: then every ack
    is a no-op)."""

    __slots__ = (
        "_acks",
        "_calls",
        "_counters",
        "_scope",
        "_terminates",
        "_wanted",
        "acking",
        "done",
        "submit",
    )

    def __init__(
        self, calls: BackendCalls, counters: Counters, *, terminates: bool = False
    ) -> None:
        """``terminates``: :attr:`submit` settles by the consumer's ``term``, not ``ack`` (an
        acker of dead letters, see :meth:`for_dead_letters`)."""
        self._calls = calls
        self._counters = counters
        self._terminates = terminates
        self._acks: Coalescer[str, None] = Coalescer(self._ack_ids)
        #: ``await submit(entry_ids)`` acknowledges ``entry_ids`` now, sharing the round trip
        #: with concurrent acks; raises :class:`~streamsink.SubscriptionError` when the backend
        #: stayed unreachable past ``reconnect_timeout`` and ``StreamDestroyedError`` when the
        #: stream was destroyed. (The coalescer's own method, not a wrapper: a manual ack pays
        #: one coroutine less.)
        self.submit: Callable[[Sequence[str]], Awaitable[Sequence[None]]] = self._acks.submit
        self._scope = anyio.CancelScope()
        self._wanted: anyio.Event | None = None  # made in the event loop, by `open`
        #: ids finished by the application (auto mode) or dropped by the topic filter (group
        #: mode), not yet acknowledged; the subscription appends to this very list
        self.done: list[str] = []
        #: ids of the flush in flight
        self.acking: list[str] = []

    def for_dead_letters(self, *, native_term: bool) -> Acker:
        """What settles entries once their dead letter is written: this acker, or (with
        ``native_term``, the backend declaring ``Capabilities.term``) one that calls the
        consumer's ``term`` instead of ``ack``, coalesced in the same way. It shares
        :attr:`done` with this one, so what is appended there is still acked by this acker."""
        if not native_term:
            return self
        letters = Acker(self._calls, self._counters, terminates=True)
        letters.done = self.done
        return letters

    def open(self) -> None:
        """Ready the acker in the event loop that runs it (before :meth:`run` starts)."""
        self._wanted = anyio.Event()

    def want(self) -> None:
        """Have the acker task send what is done, if anything is (a no-op without the task)."""
        if self.done and self._wanted is not None:
            self._wanted.set()

    async def run(self, fail: Callable[[Exception], None]) -> None:
        """The acker task: flush whenever :meth:`want` asks, until :meth:`stop`. A failure (acks
        failing past ``reconnect_timeout``) goes to ``fail``, which ends the subscription as the
        pump's failures do; a destroyed stream is left to the pump, which sees it too."""
        try:
            with self._scope:
                while True:
                    assert self._wanted is not None, "open() first"
                    await self._wanted.wait()
                    # A fresh event before the flush: a want() during the flush asks for the
                    # next one.
                    self._wanted = anyio.Event()
                    await self.flush()
        except StreamDestroyedError:
            pass
        except Exception as exc:
            fail(exc)

    def stop(self) -> None:
        """Stop the acker task (what is done stays in :attr:`done` for the final flush)."""
        self._scope.cancel()

    async def flush(self, *, final: bool = False) -> None:
        """Acknowledge what is done. On failure the ids go back to :attr:`done`, to be tried by
        the next flush; the ``final`` flush (on close) logs that failure instead of raising it:
        the entries stay pending and are redelivered, nothing is lost.

        :raises SubscriptionError: (not final) the backend stayed unreachable past
            ``reconnect_timeout``.
        """
        done = self.done
        if not done:
            return
        # In place: the subscription holds this very list.
        batch = done[:]
        done.clear()
        self.acking = batch
        try:
            await self.submit(batch)
        except BaseException as exc:
            # Not acknowledged (or not known to be: acks are idempotent): tried again later.
            done[:0] = batch
            if final and isinstance(exc, StreamsinkError):
                log.warning("could not acknowledge %d entries on close: %s", len(batch), exc)
                return
            raise
        finally:
            self.acking = []

    async def _ack_ids(self, entry_ids: Sequence[str]) -> Sequence[None]:
        consumer: GroupConsumer | None = self._calls.consumer
        if consumer is None or not entry_ids:
            return [None] * len(entry_ids)
        if self._terminates:
            # Made only for a backend that declares Capabilities.term: its consumers have it.
            await self._calls.call(cast(TerminatingGroupConsumer, consumer).term, entry_ids)
        else:
            await self._calls.call(consumer.ack, entry_ids)
        self._counters.acknowledged += len(entry_ids)
        return [None] * len(entry_ids)
