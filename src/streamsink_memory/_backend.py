"""``MemoryBackend``: the :class:`streamsink.backend.Backend` SPI over a :class:`MemoryBroker`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from anyio.abc import AsyncResource

from streamsink import BackendClosedError, ConfigurationError, validate_name, validate_stream_id
from streamsink.backend import (
    DEFAULT_ACK_GRACE_PERIOD,
    Capabilities,
    ConsumerInfo,
    Entry,
    GroupInfo,
    PendingInfo,
    StartPosition,
    StreamInfo,
    TrimBound,
)
from streamsink.backend.redis_ids import id_time
from streamsink.lowlevel import checkpoint

from . import _operate
from ._broker import MemoryBroker
from ._handles import Handles, MemoryGroupConsumer, MemoryStreamReader
from ._inspect import stream_info
from ._options import MemoryOptions
from ._retention import Retention
from ._shared import MemorySharedReads

__all__ = ["MemoryBackend"]

_CAPABILITIES = Capabilities(
    consumer_groups=True,
    fan_out=True,
    redelivery=True,
    trim=True,
    destroy_ends_subscriptions=True,
    trio=True,
    persistent=False,
    reports_gaps=True,
    claims=True,
    own_pending=True,
    term=False,
    pending_summary=True,
    entry_times=True,
    stream_info=True,
    operations=True,
    shared_reads=True,
    claim_interval=None,
    max_age=True,
    idle_ttl=True,
)
"""Redis's model of a group, in process: the core claims idle entries (at its default interval),
consumers own their pending entries by name, an id's time is its ``<ms>`` part, and a stream's
trimming is known exactly (``stream_info``); groups, consumers and pending entries can be listed
(``operations``); ``max_age`` and ``idle_ttl`` (exact, on the broker's clocks) bound streams by
age and idleness."""


class MemoryBackend(AsyncResource):
    """A connection to an in-process :class:`MemoryBroker`.

    :param broker: the broker to use; None gives this backend a new private broker. Open
        ``memory://`` (or ``memory://<name>``) through :func:`open_memory_backend` to share the
        process-wide (or a named) broker between backends.
    :param options: how to write; trimming uses ``options.maxlen`` (and ``max_age``), expiry
        ``idle_ttl``.
    :param description: for logs and errors.

    ``aclose()`` closes this backend and every handle it opened (their blocked reads wake up
    and raise :class:`~streamsink.BackendClosedError`); the broker and its streams live on.
    """

    def __init__(
        self,
        broker: MemoryBroker | None = None,
        *,
        options: MemoryOptions | None = None,
        description: str = "memory://",
    ) -> None:
        self._broker = MemoryBroker() if broker is None else broker
        self._options = MemoryOptions() if options is None else options
        self._maxlen = self._options.maxlen
        self._yield_every = self._options.yield_every
        self._description = description
        self._handles: Handles = set()
        self._closed = False
        self._unyielded = 0  # appends since this backend last yielded to the event loop
        self._retention = Retention.of(self._options)  # None: max_age and idle_ttl are off

    def __repr__(self) -> str:
        closed = " (closed)" if self._closed else ""
        return f"<MemoryBackend {self._description} maxlen={self._maxlen}{closed}>"

    @property
    def capabilities(self) -> Capabilities:
        return _CAPABILITIES

    @property
    def description(self) -> str:
        return self._description

    @property
    def broker(self) -> MemoryBroker:
        return self._broker

    @property
    def options(self) -> MemoryOptions:
        return self._options

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise BackendClosedError(f"memory backend {self._description} is closed")

    async def append(self, entries: Sequence[Entry]) -> list[str]:
        """Append entries (possibly to several streams); returns their ids, in order.

        The write itself is synchronous. Every ``options.yield_every``-th call (per backend)
        first takes a checkpoint, before anything is written: cancelled there, it writes
        nothing. The others do not yield, so their writes cannot be cancelled half-way either:
        a call that returns has written everything. Reads woken by an append run at the
        appending task's next yield.
        """
        if self._closed:
            self._check_open()
        self._unyielded += 1
        if self._unyielded >= self._yield_every:
            self._unyielded = 0
            await checkpoint()
            self._check_open()
        if self._retention is not None:
            return self._retention.append(self._broker, entries, self._maxlen)
        if len(entries) == 1:  # a send: MemoryBroker.append inline (a call less per send)
            stream_id, name, payload, topic = entries[0]
            broker = self._broker
            if broker._deadlines:  # another backend's idle_ttl on this broker
                broker.expire_idle()
            stream = broker._streams.get(stream_id)
            if stream is None:
                stream = broker._create(stream_id)
            ms = int(broker.wall_clock() * 1000)
            entry_id = stream.append(name, payload, topic, ms, self._maxlen)
            if broker._waiters:
                broker._notify(stream_id)
            return [entry_id]
        return self._broker.append_entries(entries, maxlen=self._maxlen)

    async def open_group_consumer(
        self,
        stream_id: str,
        group: str,
        consumer: str,
        start: StartPosition,
        *,
        ack_grace_period: float = DEFAULT_ACK_GRACE_PERIOD,
    ) -> MemoryGroupConsumer:
        """Join (creating it, and the stream, if needed) ``group`` on ``stream_id``.

        ``ack_grace_period`` is not kept: entries are redelivered only by the core's
        ``claim_idle`` calls, which give the idle time they want.

        :raises ConfigurationError: a group or consumer name :func:`streamsink.validate_name`
            refuses (nothing is created), or a malformed start entry id.
        """
        validate_name("group", group)
        validate_name("consumer", consumer)
        self._check_open()
        await checkpoint()
        self._check_open()
        return MemoryGroupConsumer(self._broker, stream_id, group, consumer, start, self._handles)

    async def open_reader(self, stream_id: str, start: StartPosition) -> MemoryStreamReader:
        """Open a fan-out reader; its start is resolved now."""
        self._check_open()
        await checkpoint()
        self._check_open()
        return MemoryStreamReader(self._broker, stream_id, start, self._handles)

    async def open_shared_reads(self) -> MemorySharedReads:
        """Reads of many streams at once, for the core's fan-out hub; closed with the backend.
        Does not yield: the reader's join then takes one checkpoint, as ``open_reader`` does."""
        self._check_open()
        return MemorySharedReads(self._broker, self._handles)

    async def entry_time(self, stream_id: str, entry_id: str) -> datetime:
        """The time of ``entry_id``: its ``<ms>`` part (the wall clock when it was appended, or
        the previous entry's time if the clock went back), in UTC. The entry need not exist.

        :raises ConfigurationError: not a ``<ms>-<seq>`` id.
        """
        self._check_open()
        await checkpoint()
        return id_time(entry_id)

    async def stream_info(
        self, stream_id: str, *, resume_id: str | None = None
    ) -> StreamInfo | None:
        """The stream now (None when it does not exist: never appended to, destroyed, or lost
        by :meth:`MemoryBroker.flush`), with ``resume`` set when ``resume_id`` is given. The
        trimmed-through id is exact: a resume id before the first entry is ``TRIMMED`` only if
        trimming removed it, else ``BEFORE_FIRST``.

        :raises ConfigurationError: ``resume_id`` is not a ``<ms>-<seq>`` id.
        """
        validate_stream_id(stream_id)
        self._check_open()
        await checkpoint()
        self._check_open()
        return stream_info(self._broker, stream_id, resume_id)

    # -- operations (streamsink.backend.OperableBackend) ----------------------------------------

    async def _enter(self, stream_id: str, *names: tuple[str, str | None]) -> None:
        validate_stream_id(stream_id)
        for kind, name in names:
            if name is not None:
                validate_name(kind, name)
        self._check_open()
        await checkpoint()
        self._check_open()

    async def list_streams(self) -> list[str]:
        """The streams of the broker, sorted."""
        self._check_open()
        await checkpoint()
        self._check_open()
        return self._broker.stream_ids()

    async def list_groups(self, stream_id: str) -> list[GroupInfo] | None:
        """The stream's groups; ``lag`` is exact (entries held after the last delivered)."""
        await self._enter(stream_id)
        return _operate.list_groups(self._broker, stream_id)

    async def list_consumers(self, stream_id: str, group: str) -> list[ConsumerInfo] | None:
        """A group's consumers; a consumer's idle time runs from its last read or claim (or,
        for one never used since it was opened, from when it was opened)."""
        await self._enter(stream_id, ("group", group))
        return _operate.list_consumers(self._broker, stream_id, group)

    async def list_pending(
        self,
        stream_id: str,
        group: str,
        *,
        after: str | None = None,
        count: int = 100,
        consumer: str | None = None,
    ) -> list[PendingInfo] | None:
        """A page of a group's pending entries (nacked ones have an infinite idle time).

        :raises ConfigurationError: a bad name, ``count`` below 1, ``after`` not ``<ms>-<seq>``.
        """
        _check_count(count)
        await self._enter(stream_id, ("group", group), ("consumer", consumer))
        return _operate.list_pending(self._broker, stream_id, group, after, count, consumer)

    async def delete_idle_consumer(
        self, stream_id: str, group: str, consumer: str, *, min_idle: float
    ) -> bool:
        """Delete the consumer if it holds nothing and was idle for ``min_idle`` seconds (the
        broker is single-threaded: check and delete are one step)."""
        _check_min_idle(min_idle)
        await self._enter(stream_id, ("group", group), ("consumer", consumer))
        return _operate.delete_idle_consumer(self._broker, stream_id, group, consumer, min_idle)

    async def trim_stream(self, stream_id: str, bound: TrimBound) -> int:
        """Trim exactly; readers and groups behind the cut get a gap on their next read."""
        await self._enter(stream_id)
        return _operate.trim_stream(self._broker, stream_id, bound)

    async def destroy(self, stream_id: str) -> None:
        """Delete the stream with its entries and groups (a missing stream is fine); reads on
        it end with :class:`~streamsink.backend.StreamDestroyedError`. A stream appended to
        later under the same id starts its ids over from the clock, with no memory of the
        destroyed one's last id: in the same millisecond an id may repeat one it had."""
        self._check_open()
        await checkpoint()
        self._check_open()
        self._broker.destroy(stream_id)

    async def aclose(self) -> None:
        """Close this backend and the handles it opened. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for handle in list(self._handles):
            await handle.aclose()


def _check_count(count: int) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigurationError(f"count={count!r} is invalid: expected an integer >= 1")


def _check_min_idle(min_idle: float) -> None:
    if isinstance(min_idle, bool) or not isinstance(min_idle, int | float) or not min_idle >= 0:
        raise ConfigurationError(f"min_idle={min_idle!r} is invalid: expected seconds >= 0")
