"""``ReadStep``: a blocking read the pump leaves to the application task that waits for events.

An event the pump reads reaches a waiting application task in two passes of the event loop: the
pump's, woken by the backend, then the application's, woken by the hand-off. When the
application already waits, nothing is buffered and the last read caught up with the stream
(a read now waits for new entries), the pump has nothing to do meanwhile but wait, so it offers
its read (the read and the intake of what it brings) to the waiting task
through the :class:`~._readahead.ReadAhead`: the backend then wakes the application itself,
which takes the batch in and goes on with its first event in the same pass. The pump waits
until the step is done, then goes on (acks, claims, the next read).

Who may cancel a step, and what is left then:

- the pump's end (``aclose``, a failure): the pump cancels the step's own scope, the
  application's task goes on and finds the subscription ending;
- the application's own scope (a worker cancelled): the read is cancelled as any read may be
  (a backend loses nothing to it: what it had already handed to this consumer stays pending,
  though a Redis backend drops the connection the read was on), the step counts as interrupted,
  and the pump fetches this consumer's pending entries again where the backend has them
  (``own_pending``). A task whose deadline (``move_on_after`` around ``__anext__``) may come
  before the read would end by itself does not take the step at all, so that waiting with a
  timeout in a loop costs no cancelled reads;
- a task that was offered the step and is cancelled before it took it gives it back
  (:meth:`ReadStep.revoke`); the pump then runs it itself.

A step made with ``again`` (a fan-out reader's) is not over after one read while ``again()``
says so (the read caught up with the stream): it stays offered to the application task, which
runs it again at its next wait, so the pump is not woken, nor a new step made, for every batch.
The pump is woken when it ends (a read brought a full batch, failed or was cancelled; the
application waits with a deadline; the pump itself ends).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import anyio

from ..lowlevel import new_waiter

__all__ = ["ReadStep"]

T = TypeVar("T")


class ReadStep(Generic[T]):
    """One offered read: run by an application task (:meth:`run`) or given back
    (:meth:`revoke`); the pump awaits :meth:`finished` either way."""

    __slots__ = (
        "_again",
        "_body",
        "_done",
        "_stopped",
        "block",
        "error",
        "interrupted",
        "ran",
        "result",
        "scope",
    )

    def __init__(
        self,
        body: Callable[[], Awaitable[T]],
        block: float,
        again: Callable[[], bool] | None = None,
    ) -> None:
        """Make it in the pump's task (the event loop both tasks share); ``block``: the
        longest the read waits; ``again``: after a read that ran to its end, whether the step
        stays offered for the next one (see the module docstring)."""
        self._body = body
        self.block = block
        self._again = again
        self._stopped = False
        self._done = new_waiter()
        #: the scope of the run in progress, cancelled by the pump when it ends meanwhile
        self.scope = anyio.CancelScope()
        #: an application task took it (else the pump runs ``body`` itself)
        self.ran = False
        #: it was cancelled before the read and intake were complete
        self.interrupted = False
        #: what ``body`` raised (re-raised by the pump, in the pump's task)
        self.error: Exception | None = None
        #: what ``body`` returned, once it ran to its end
        self.result: T | None = None

    async def run(self) -> bool:
        """Run the read in the calling (application) task; True when the step is not over
        (offer it to this task again). Raises only the caller's own cancellation; everything
        else ``body`` raises is kept for the pump."""
        over = True
        if self.ran:  # a step run again: a scope is entered once
            self.scope = anyio.CancelScope()
        self.ran = True
        scope = self.scope
        try:
            with scope:
                self.result = await self._body()
            self.interrupted = scope.cancelled_caught
            again = self._again
            over = self.interrupted or self._stopped or again is None or not again()
        except Exception as exc:
            self.error = exc
        except BaseException:
            self.interrupted = True
            raise
        finally:
            if over:
                self._done.set()
        return not over

    def revoke(self) -> None:
        """Give the step back untaken (or, one run again, not taken this time): the pump runs
        it itself."""
        self.ran = False  # what earlier runs read is delivered: the pump reads on from there
        self._done.set()

    def cancel(self) -> None:
        """The pump ends: the run in progress is cancelled, and there is no other."""
        self._stopped = True
        self.scope.cancel()

    async def finished(self) -> None:
        """Wait until the step ran (or was given back)."""
        await self._done.wait()
