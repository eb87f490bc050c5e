"""A group consumer's part in pulse's keep-alive protocol, so that Go pulse sinks sharing its
group do not delete it.

A pulse sink deletes (``XGROUP DELCONSUMER``) every consumer of its group that has no entry in
the sink's keep-alive map, or whose entry is older than twice its ack grace period, when it starts
and on every idle check it wins (every 500 ms); Redis then drops that consumer's pending entries.
A consumer that takes part, as pulse's own consumers do:

- before it exists in the group, adds itself to the stream's consumers map
  (``stream:<stream>:sinks``, field = group, a JSON array of consumer names) and sets its entry
  in the group's keep-alive map (``sink:<group>:keepalive``, field = consumer, unix nanoseconds
  as a decimal string); its first read creates it in the group;
- writes its keep-alive again every ack grace period, pulse's schedule (the subscription's
  ``ack_grace_period``, given when the consumer is opened; pulse's default, 20 s, without one),
  with every live consumer of its group on the backend, by the first of their calls that finds
  it due (see :class:`KeepAlive`);
- on close, if it holds nothing pending, deletes itself from the group and removes both entries;
  if it still holds entries it stays, with its keep-alive written once more (pulse's Close leaves
  its consumer and keep-alive too): pulse claims entries idle for a grace period before it finds
  the keep-alive twice as old and deletes the consumer, so that margin is a full grace period.

Both maps are pulse replicated maps, written with pulse's scripts (:mod:`._rmap`). The consumer
also lists itself in a hash of streamsink's own, ``streamsink:sink:<group>:consumers`` (field =
consumer, value = JSON array of the streams it is open on), which tells streamsink consumers from
pulse ones (:mod:`._ownership`) and keeps the keep-alive entry while any stream still uses it.

Cost: one refresh script per group, grace period and backend every grace period, with one
``PUBLISH`` per consumer (0.05/s each at pulse's default of 20 s), which pulse fans out to every
replica of the map (see :mod:`._keepalive_group`); one script per consumer to join and to leave.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, final

import attrs
import redis.exceptions as rex

from streamsink import BackendUnavailableError, StreamsinkError

from . import _rmap as rmap
from ._connection import execute
from ._deletion import DeletionWatch
from ._errors import map_redis_errors
from ._handle import Context
from ._keepalive_scripts import FORGET_STREAM, JOIN, LEAVE, REFRESH
from ._positions import Script

if TYPE_CHECKING:
    from ._keepalive_group import KeepAliveGroup

__all__ = ["DEFAULT_GRACE", "Bookkeeping", "KeepAlive", "forget_stream"]

_log = logging.getLogger("streamsink_redis")

DEFAULT_GRACE: Final = 20.0
"""pulse's default AckGracePeriod (seconds): the refresh period of a consumer opened without a
grace period of its own."""


async def forget_stream(ctx: Context, stream_key: str, stream_id: str) -> None:
    """Before a stream is destroyed: remove its streamsink consumers' keep-alive bookkeeping and
    its consumers map (see ``FORGET_STREAM``). Best effort: failures are logged, not raised."""
    keys = [stream_key, rmap.content(consumers_map(stream_id))]
    args = [stream_id, rmap.channel(consumers_map(stream_id))]
    try:
        with map_redis_errors("admin", ctx.where):
            try:
                await execute(ctx.client, *FORGET_STREAM.evalsha(keys, args))
            except rex.NoScriptError:
                await execute(ctx.client, *FORGET_STREAM.eval(keys, args))
    except StreamsinkError as exc:
        _log.warning("keep-alive bookkeeping of %r not removed: %s", stream_id, exc)


def keepalive_map(group: str) -> str:
    """pulse's keep-alive map of a sink name (= group), shared by all its streams."""
    return f"sink:{group}:keepalive"


def consumers_map(stream_id: str) -> str:
    """pulse's consumers map of a stream (field = sink name, value = JSON array of consumers)."""
    return f"stream:{stream_id}:sinks"


def registry(group: str) -> str:
    """streamsink's own hash of the group's streamsink consumers."""
    return f"streamsink:sink:{group}:consumers"


@final
@attrs.frozen
class Bookkeeping:
    """The keys and channels one consumer's keep-alive writes, and the arguments of its
    scripts."""

    stream_key: str
    stream_id: str
    group: str
    consumer: str

    @property
    def keepalive(self) -> str:
        return rmap.content(keepalive_map(self.group))

    @property
    def consumers(self) -> str:
        return rmap.content(consumers_map(self.stream_id))

    @property
    def consumers_channel(self) -> str:
        return rmap.channel(consumers_map(self.stream_id))

    @property
    def registry(self) -> str:
        return registry(self.group)

    def keys(self) -> list[str]:
        return [self.stream_key, self.keepalive, self.consumers, self.registry]

    def args(self, now_ns: int) -> list[Any]:
        return [
            self.group,
            self.consumer,
            str(now_ns),
            rmap.channel(keepalive_map(self.group)),
            rmap.channel(consumers_map(self.stream_id)),
            self.stream_id,
        ]


@final
class KeepAlive:
    """One consumer's keep-alive: :meth:`join` at open, :meth:`refresh_if_due` on each of the
    consumer's calls, :meth:`leave` at close.

    Consumers of one group with one grace period on one backend are refreshed together, by one
    script (:class:`~._keepalive_group.KeepAliveGroup`): the first call of any of them that finds
    the group due writes the keep-alive of every one that is *live* (waiting in a blocking read,
    or having made a call within a grace period). The refresh rides on the consumers' own calls
    instead of a task of its own: a subscription's pump keeps calling its consumer while it
    runs, and one blocking read of the group's at a time ends when the refresh is due
    (:meth:`cut`), so the keep-alives are written on pulse's schedule (within a read's round
    trip) however long the reads may block; and nothing runs besides the consumers' calls. It
    also says what pulse's keep-alive means to say: the consumer is working. A process that is
    stopped, or an application stuck for long enough that its subscription neither reads nor
    renews anything, stops refreshing, and pulse may then claim what it holds (entries idle for
    a grace period) before it deletes the consumer (a keep-alive twice that old).
    """

    def __init__(
        self,
        ctx: Context,
        books: Bookkeeping,
        watch: DeletionWatch,
        group: KeepAliveGroup,
        *,
        holds: Callable[[], bool] = lambda: False,
    ) -> None:
        """``group``: the consumers it is refreshed with (its grace period is this one's);
        ``holds``: whether the consumer may hold pending entries now (a refresh then also checks
        that the group still lists it)."""
        self._ctx = ctx
        self._books = books
        self._watch = watch
        self._group = group
        self._holds = holds
        self._joined = False
        self._last_call = time.monotonic()
        #: True while the consumer waits in a blocking read (it is live meanwhile)
        self.reading = False

    @property
    def books(self) -> Bookkeeping:
        """The keys and channels it writes."""
        return self._books

    @property
    def grace(self) -> float:
        """The grace period in force (seconds): the refresh period, and half the age at which
        pulse takes a keep-alive for stale."""
        return self._group.grace

    @property
    def joined(self) -> bool:
        """The consumer's keep-alive was written at least once."""
        return self._joined

    @property
    def checks(self) -> bool:
        """Whether a refresh also looks the consumer up in ``XINFO CONSUMERS``: while it may hold
        entries (a deletion of a consumer holding nothing drops nothing)."""
        return self._holds()

    def live(self, now: float) -> bool:
        """Whether a refresh at ``now`` (monotonic) writes this keep-alive: the consumer waits in
        a read, or made a call within a grace period."""
        return self.reading or now - self._last_call < self._group.grace

    def called(self) -> None:
        """The consumer made a call (it is working)."""
        self._last_call = time.monotonic()

    def due(self) -> bool:
        """A grace period has passed since the group's keep-alives were last written (or
        tried)."""
        return self._group.due()

    def remaining(self) -> float:
        """Seconds until :meth:`due` (0 or less: due now)."""
        return self._group.remaining()

    def cut(self, block_ms: int) -> int:
        """A blocking read is about to wait up to ``block_ms``: how long it may (the consumer
        then counts as reading until :meth:`read_ended`). One read of the group's at a time
        ends when the refresh is due, so that its next call refreshes on time however long
        the core lets the reads block."""
        self.reading = True
        return self._group.cut(self, block_ms)

    def read_ended(self) -> None:
        """The blocking read started after :meth:`cut` ended (returned, failed, cancelled)."""
        self.reading = False
        self._group.read_ended(self)

    async def join(self) -> None:
        """Register the consumer and write its keep-alive (before it exists in the group); it
        is refreshed with its group from now on.

        When Redis is out of memory (it refuses the writes) the consumer goes on without: it is
        logged, and each refresh tries again.

        :raises BackendUnavailableError: Redis cannot be reached.
        """
        try:
            await self._run(JOIN)
        except BackendUnavailableError as exc:
            if "out of memory" not in str(exc):
                raise
            _log.warning(
                "%s not written (pulse sinks sharing the group may delete the consumer until it "
                "is): %s",
                self._name(),
                exc,
            )
        else:
            self._joined = True
            self._watch.seen_intact()
        self._group.add(self)

    async def leave(self) -> bool:
        """At close: delete the consumer and its entries if it holds nothing pending, and return
        True; otherwise write its keep-alive once more, leave everything, and return False. It
        is no longer refreshed with its group either way.

        :raises StreamsinkError: the script failed (the caller logs it: cleanup is best effort).
        """
        self._group.discard(self)
        return bool(await self._run(LEAVE))

    async def refresh_if_due(self) -> None:
        """Refresh the group's keep-alives if they are due; never raises a backend error (a
        failed refresh is logged, and tried again a little later)."""
        await self._group.refresh_if_due()

    async def refresh(self) -> None:
        """Write this keep-alive now (join, if the consumer never could), and check that the
        consumer is still in its group, telling the watch when it is not.

        :raises StreamsinkError: the script failed.
        """
        if not self._joined:
            await self.join()
            return
        rejoined, listed = await self._run(REFRESH)
        self.refreshed(int(rejoined), int(listed))

    def refreshed(self, rejoined: int, listed: int) -> None:
        """Act on what a refresh script found: ``rejoined`` 1 when the keep-alive entry was gone
        (and re-registered); ``listed`` 1 / 0 whether the group lists the consumer, -1 when the
        group is gone, -2 when not looked up."""
        if rejoined:
            self._watch.noticed(
                "its keep-alive entry was gone, as a pulse sink's stale-consumer sweep leaves it"
            )
        elif listed == 0:
            self._watch.noticed("XINFO CONSUMERS no longer lists it")
        elif listed == 1:
            self._watch.seen_intact()

    def _name(self) -> str:
        books = self._books
        return f"keep-alive of consumer {books.consumer!r} in group {books.group!r}"

    async def _run(self, script: Script) -> Any:
        books = self._books
        keys: Sequence[str] = books.keys()
        args = books.args(time.time_ns())
        with map_redis_errors("admin", self._ctx.where):
            try:
                return await execute(self._ctx.client, *script.evalsha(keys, args))
            except rex.NoScriptError:
                pass  # not cached (a restarted server): send the text
            return await execute(self._ctx.client, *script.eval(keys, args))
