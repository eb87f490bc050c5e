"""``ReadAhead``: the bounded buffer between a subscription's pump and the application.

The pump hands over whole batches (one hand-off per read, not per event); the application's
tasks take events one at a time. What the buffer holds is bounded twice (docs/contract.md rule
14): in events (``buffer``) and in payload bytes (``buffer_bytes``), and reads ask for fewer
entries when entries are large. The pump waits for room before handing a batch over, so a slow
application slows reading instead of growing memory. In a group, every batch carries a lease
(:mod:`._leases`): an event whose lease ran out is not handed out (:meth:`ReadAhead.take`).
While an application task waits with nothing buffered, the pump offers it its blocking read
(:meth:`ReadAhead.offer`, :mod:`._baton`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import anyio
from anyio.lowlevel import checkpoint_if_cancelled

from ._baton import ReadStep
from ._handoff import Handoff
from ._leases import Lease

__all__ = ["NOTHING", "ReadAhead"]

T = TypeVar("T")

#: what :meth:`ReadAhead.take` returns when it has no event to hand out
NOTHING: Final = object()

_DEADLINE_MARGIN: Final = 0.1  # seconds a read may take beyond its block (a round trip)


class ReadAhead:
    """Events read and not yet taken. One pump task puts, any number of application tasks take,
    all on one event loop.

    The attributes are read by the engine's hot path; only this class writes them, but for
    ``Subscription.__anext__``, which takes an event itself when :meth:`take` would do nothing
    more than pop it.
    """

    __slots__ = (
        "_budget",
        "_buffer",
        "_fetch_count",
        "_handoff",
        "_now",
        "_offered",
        "_poll",
        "_refill",
        "_room",
        "_waiting",
        "_wake_bytes",
        "bytes_out",
        "entry_bytes",
        "items",
        "items_bytes",
        "items_lease",
        "lease_limit",
        "outstanding",
        "wake_at",
    )

    def __init__(
        self,
        *,
        buffer: int,
        buffer_bytes: int,
        fetch_count: int,
        poll: float,
        clock: Callable[[], float],
        lease_limit: float,
    ) -> None:
        """``poll``: longest wait for room before the pump looks again (it renews leases and
        sends acks meanwhile); ``clock`` and ``lease_limit``: a batch whose lease is
        ``lease_limit`` old on ``clock`` is no longer handed out. Make it in the event loop that
        uses it."""
        self._buffer = buffer
        self._budget = buffer_bytes
        self._fetch_count = fetch_count
        self._poll = poll
        self._now = clock
        self.lease_limit = lease_limit
        # Batches from the pump: (items, their lease or None, payload bytes). Unbounded as a
        # queue: `outstanding` and `bytes_out` bound what it holds.
        self._handoff: Handoff[tuple[list[Any], Lease | None, int]] = Handoff()
        # Uncontended, taking it does not yield: a task that finds a batch waiting goes on with
        # it, and one that must wait is there when the pump offers its read.
        self._refill = anyio.Lock(fast_acquire=True)
        self._waiting = False  # an application task waits in `refill`, nothing buffered
        self._offered: ReadStep[Any] | None = None  # the pump's read, offered to that task
        self._room = anyio.Event()  # set when `outstanding`/`bytes_out` fell to the marks below
        #: the pump waits for `outstanding` to fall to this (-1: not waiting)
        self.wake_at = -1
        self._wake_bytes = -1  # ... or for `bytes_out` to fall to this
        #: the batch being handed out, what is left of it (oldest first)
        self.items: deque[Any] = deque()
        #: ... its lease (group mode) and its payload bytes
        self.items_lease: Lease | None = None
        self.items_bytes = 0
        #: events handed over by the pump, not yet taken by the application
        self.outstanding = 0
        #: payload bytes of the batches handed over and not wholly taken
        self.bytes_out = 0
        #: mean payload size of the last batch read (-1: none read yet)
        self.entry_bytes = -1

    # -- the application's side ---------------------------------------------------------------

    def take(self) -> Any:
        """The next event of the current batch, or :data:`NOTHING` when the batch is used up
        (call :meth:`refill`) or its lease ran out (call :meth:`expire`)."""
        items = self.items
        if not items:
            return NOTHING
        lease = self.items_lease
        # Group mode: read-ahead whose lease ran out may be another consumer's by now (this
        # process was stopped, or the application took nothing for a grace period).
        if lease is not None and self._now() - lease.renewed_at >= self.lease_limit:
            return NOTHING
        outstanding = self.outstanding = self.outstanding - 1
        if outstanding <= self.wake_at:
            self.wake_at = -1
            self._room.set()
        return items.popleft()

    async def refill(self, before_waiting: Callable[[], None]) -> None:
        """Wait for the pump's next batch (the current one is used up); ``before_waiting`` runs
        each time this has to wait.

        :raises anyio.EndOfStream: the pump ended and every batch was taken.
        :raises: the runtime's cancellation exception when the task's scope is cancelled,
            checked once per batch (taking from the buffer never waits, so without this a task
            whose scope was cancelled would go on being handed buffered events, where trio's
            channels check on every receive).
        """
        items = self.items
        await checkpoint_if_cancelled()
        while not items:
            before_waiting()
            # Several tasks may iterate one subscription (a worker pool in manual mode): one
            # refills at a time and the others take from what it got, so read-ahead stays
            # bounded and no batch is left behind.
            async with self._refill:
                while not items:
                    self._release_bytes()
                    step = self._offered
                    if step is not None:
                        self._offered = None
                        if self._handoff.empty and _outlasts(step.block):
                            if await step.run():
                                self._offered = step  # for this task's next wait
                                if self._handoff.empty:
                                    continue  # the read brought nothing: the next one now
                        else:  # a batch came first, or this task's deadline may end the read
                            step.revoke()
                    try:
                        batch, self.items_lease, self.items_bytes = self._handoff.get_nowait()
                    except anyio.WouldBlock:
                        await self._wait()
                        continue
                    except anyio.EndOfStream:
                        self.items_lease = None
                        raise
                    items.extend(batch)

    async def _wait(self) -> None:
        """Wait for a batch, the end, or the pump's offer of its read. A task cancelled with
        the offer untaken gives it back, so the pump does not wait on a task that left."""
        self._waiting = True
        try:
            await self._handoff.wait()
        except BaseException:
            step = self._offered
            if step is not None:
                self._offered = None
                step.revoke()
            raise
        finally:
            self._waiting = False

    def expire(self) -> int:
        """Drop what is left of the current batch, whose lease ran out; return how many events
        were dropped. They stay pending in the group for whoever it gave them to."""
        items = self.items
        count = len(items)
        items.clear()
        self.items_lease = None
        outstanding = self.outstanding = self.outstanding - count
        if outstanding <= self.wake_at:
            self.wake_at = -1
            self._room.set()
        return count

    def _release_bytes(self) -> None:
        """The current batch was wholly taken: its bytes no longer count as read-ahead."""
        if self.items_bytes:
            self.bytes_out -= self.items_bytes
            self.items_bytes = 0
            if self._wake_bytes >= 0 and self.bytes_out <= self._wake_bytes:
                self._wake_bytes = -1
                self._room.set()

    # -- the pump's side ----------------------------------------------------------------------

    def read_count(self) -> int:
        """Entries to ask for: ``fetch_count``, fewer when entries are large, so that one read
        does not bring much more than the byte budget has room for. Before the first entry is
        seen their size is unknown: the first read asks for one."""
        size = self.entry_bytes
        if size < 0:
            return 1
        count = self._fetch_count
        if size * count > self._budget:
            room = max(self._budget - self.bytes_out, size)
            count = max(1, min(count, room // size))
        return count

    async def wait_for_room(
        self, size: int, nbytes: int, keep_up: Callable[[], Awaitable[None]]
    ) -> None:
        """Wait until a batch of ``size`` events and ``nbytes`` of payload fits: the application
        then has at most ``buffer`` events (and about ``buffer_bytes`` of payload) waiting, and
        the pump holds one batch. ``keep_up`` runs before each wait and at least every ``poll``
        seconds while waiting (the pump acks and renews leases there)."""
        wake_at = max(0, self._buffer - size)
        wake_bytes = max(0, self._budget - nbytes)
        while self.outstanding > wake_at or self.bytes_out > wake_bytes:
            await keep_up()
            if self.outstanding <= wake_at and self.bytes_out <= wake_bytes:
                break
            self._room = room = anyio.Event()
            # Wake on whichever bound holds the pump back (taking events frees events; taking
            # the last event of a batch frees its bytes).
            self.wake_at = wake_at if self.outstanding > wake_at else -1
            self._wake_bytes = wake_bytes if self.bytes_out > wake_bytes else -1
            with anyio.move_on_after(self._poll):
                await room.wait()

    def offer(
        self,
        body: Callable[[], Awaitable[T]],
        block: float,
        again: Callable[[], bool] | None = None,
    ) -> ReadStep[T] | None:
        """Offer ``body`` (a read waiting up to ``block`` seconds, and the intake of what it
        brings) to the application task waiting in :meth:`refill` with nothing buffered; None
        when no task waits (the pump then runs it itself). ``again``: see :class:`ReadStep`."""
        if not self._waiting or self._offered is not None or not self._handoff.empty:
            return None
        step = ReadStep(body, block, again)
        self._offered = step
        self._handoff.poke()
        return step

    def withdraw(self, step: ReadStep[Any]) -> None:
        """Take back an offer no task took (the pump is ending)."""
        if self._offered is step:
            self._offered = None

    def hand_over(self, batch: list[Any], lease: Lease | None, nbytes: int) -> bool:
        """Queue a batch for the application; True if a task was waiting for one.

        :raises anyio.ClosedResourceError: after :meth:`close`.
        """
        self.outstanding += len(batch)
        self.bytes_out += nbytes
        return self._handoff.put((batch, lease, nbytes))

    def close(self) -> None:
        """No more batches: what is queued is still taken, then :meth:`refill` raises
        ``EndOfStream``."""
        self._handoff.close()


def _outlasts(block: float) -> bool:
    """The calling task's deadline is far enough away for a read waiting ``block`` seconds to
    end by itself first (a cancelled read costs a Redis backend its connection)."""
    deadline = anyio.current_effective_deadline()
    return deadline == math.inf or deadline - anyio.current_time() > block + _DEADLINE_MARGIN
