"""``FaultyBackend``: any backend, with failures and delays injected into chosen SPI calls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from typing import Any, TypeVar, cast

import anyio
import attrs

from .._exceptions import BackendUnavailableError, StreamsinkError
from ..backend import (
    DEFAULT_ACK_GRACE_PERIOD,
    Backend,
    Capabilities,
    DeliveryKey,
    Entry,
    GroupConsumer,
    PendingSummary,
    Record,
    StartPosition,
    StreamReader,
    SummarizingGroupConsumer,
    TerminatingGroupConsumer,
    TimedBackend,
)
from ._faulty_rules import (
    READS,
    ErrorSpec,
    FaultyCall,
    Rule,
    SpiMethod,
    check_method,
    check_times,
    error_of,
)

__all__ = ["FaultyBackend", "FaultyCall", "FaultyGroupConsumer", "FaultyStreamReader", "SpiMethod"]

T = TypeVar("T")


class FaultyBackend:
    """Wraps any :class:`~streamsink.backend.Backend` and makes chosen SPI calls fail or wait,
    to test what an application (or the core) does when the broker misbehaves.

    ``FaultyBackend(inner)`` is itself a backend: pass it to ``StreamSink``,
    ``StreamSubscriber`` or ``streamsink.connect``. Its group consumers and readers are wrapped
    too. With no fault set it forwards every call unchanged; its ``capabilities`` and other
    attributes (``broker``…) are the inner backend's. The optional ``entry_time`` and ``term``
    are forwarded too (the inner backend has them when its capabilities declare them).
    ``aclose`` is never failed or delayed.

    Faults are matched per call in the order they were set; a call raises the first matching
    failure. Every call is recorded in :attr:`calls`. Faults may be changed at any time, from any
    task of the event loop.

    >>> backend = FaultyBackend(MemoryBackend())          # doctest: +SKIP
    >>> backend.fail("read_new", times=2)                 # the next 2 reads: unavailable
    >>> backend.fail("ack", error=GroupLostError)         # the next ack: the group vanished
    >>> backend.fail("read_new", lose_reply=True, nonempty=True)  # the next read of entries:
    ...                                                   # they are read, the reply is lost
    >>> backend.delay("append", 0.5, times=None)          # every append waits 0.5 s first
    >>> with backend.outage(): ...                        # every call fails meanwhile
    """

    def __init__(self, inner: Backend) -> None:
        self._inner = inner
        self._rules: list[Rule] = []
        self.calls: list[FaultyCall] = []
        """Every SPI call that reached this backend or its handles, in order."""

    @property
    def inner(self) -> Backend:
        """The wrapped backend."""
        return self._inner

    # -- setting faults ---------------------------------------------------------------------------

    def fail(
        self,
        method: SpiMethod | None = None,
        *,
        times: int | None = 1,
        error: ErrorSpec = BackendUnavailableError,
        stream_id: str | None = None,
        lose_reply: bool = False,
        nonempty: bool = False,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (of every method when None) raise ``error``.

        :param times: how many calls fail; None: every call until :meth:`clear`.
        :param error: an error instance, or a StreamsinkError class instantiated with a message
            naming the call (default :class:`~streamsink.BackendUnavailableError`; give
            :class:`~streamsink.backend.GroupLostError` for a vanished group,
            :class:`~streamsink.backend.StreamDestroyedError` for a destroyed stream).
        :param stream_id: only calls concerning this stream (an append: any of its entries).
        :param lose_reply: run the call on the inner backend first, then raise: the broker did
            the work but the reply was lost (entries read this way are pending, appends written).
        :param nonempty: with ``lose_reply``, on a read (``read_new``, ``read_own_pending``,
            ``claim_idle``, ``read``): lose the next ``times`` replies that carry records, as
            they arrive, so a read already waiting when the fault is set loses its reply too. A
            read that returns nothing goes through and does not count (losing it loses nothing).
        :raises ValueError: ``method`` is not an SPI method, ``times`` is not positive, ``error``
            is not a StreamsinkError, or ``nonempty`` is given without ``lose_reply`` or for a
            method that is not a read.
        """
        check_method(method)
        check_times(times)
        if nonempty and not (lose_reply and method in READS):
            raise ValueError(
                "nonempty needs lose_reply=True and a read "
                f"({', '.join(sorted(READS))}), got method={method!r}, lose_reply={lose_reply!r}"
            )
        if not (
            isinstance(error, StreamsinkError)
            or (isinstance(error, type) and issubclass(error, StreamsinkError))
        ):
            raise ValueError(f"error must be a StreamsinkError (class or instance), got {error!r}")
        self._rules.append(
            Rule(method, stream_id, times, error=error, lose_reply=lose_reply, nonempty=nonempty)
        )

    def delay(
        self,
        method: SpiMethod | None,
        seconds: float,
        *,
        times: int | None = 1,
        stream_id: str | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (every method when None) wait ``seconds``
        before they run (cancellable, as a slow broker is).

        :raises ValueError: ``method`` is not an SPI method, ``seconds`` is negative, ``times``
            is not positive.
        """
        check_method(method)
        check_times(times)
        if not seconds >= 0:
            raise ValueError(f"seconds must not be negative, got {seconds!r}")
        self._rules.append(Rule(method, stream_id, times, delay=float(seconds)))

    @contextmanager
    def outage(
        self, error: ErrorSpec = BackendUnavailableError, *, stream_id: str | None = None
    ) -> Iterator[None]:
        """While inside, every call (but ``aclose``) raises ``error``, as an unreachable broker
        does; calls go through again on leaving."""
        self.fail(None, times=None, error=error, stream_id=stream_id)
        rule = self._rules[-1]
        try:
            yield
        finally:
            if rule in self._rules:
                self._rules.remove(rule)

    def clear(self) -> None:
        """Remove every fault and delay; calls go straight through again."""
        self._rules.clear()

    def count(self, method: str, outcome: str | None = None) -> int:
        """How many calls of ``method`` (with that ``outcome``, if given) were recorded."""
        return sum(
            1
            for call in self.calls
            if call.method == method and (outcome is None or call.outcome == outcome)
        )

    # -- the calls ---------------------------------------------------------------------------------

    async def _call(
        self, method: str, streams: Sequence[str], fn: Callable[..., Awaitable[T]], *args: Any
    ) -> T:
        stream = streams[0] if len(set(streams)) == 1 else None
        rules = [rule for rule in self._rules if rule.matches(method, streams)]
        for rule in rules:
            if rule.delay:
                rule.take()
                await anyio.sleep(rule.delay)
        # A nonempty fault acts on the reply (below), not on the call.
        failure = next((r for r in rules if r.error is not None and not r.nonempty), None)
        if failure is None:
            record = FaultyCall(method, stream, "ok")
            self.calls.append(record)
            result = await fn(*args)
            if method in READS and result:
                self._lose_reply(record, streams)
            return result
        failure.take()
        error = error_of(failure, method, stream)
        if failure.lose_reply:
            await fn(*args)
            self.calls.append(FaultyCall(method, stream, "lost"))
        else:
            self.calls.append(FaultyCall(method, stream, "failed"))
        raise error

    def _lose_reply(self, record: FaultyCall, streams: Sequence[str]) -> None:
        """A read returned records: raise the first nonempty fault that matches it now (it may
        have been set while the read waited), its call then recorded ``"lost"``."""
        rules = (r for r in self._rules if r.nonempty and r.matches(record.method, streams))
        rule = next(rules, None)
        if rule is None:
            return
        rule.take()
        lost = attrs.evolve(record, outcome="lost")
        # The call was recorded when it started; ``calls`` may have been cleared since.
        for index in range(len(self.calls) - 1, -1, -1):
            if self.calls[index] is record:
                self.calls[index] = lost
                break
        else:
            self.calls.append(lost)
        raise error_of(rule, record.method, record.stream_id)

    @property
    def capabilities(self) -> Capabilities:
        return self._inner.capabilities

    @property
    def description(self) -> str:
        return f"faulty {self._inner.description}"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._inner, name)

    async def append(self, entries: Sequence[Entry]) -> list[str]:
        streams = [entry.stream_id for entry in entries]
        return await self._call("append", streams, self._inner.append, entries)

    async def open_group_consumer(
        self,
        stream_id: str,
        group: str,
        consumer: str,
        start: StartPosition,
        *,
        ack_grace_period: float = DEFAULT_ACK_GRACE_PERIOD,
    ) -> GroupConsumer:
        inner = await self._call(
            "open_group_consumer",
            [stream_id],
            partial(self._inner.open_group_consumer, ack_grace_period=ack_grace_period),
            stream_id,
            group,
            consumer,
            start,
        )
        return FaultyGroupConsumer(self, inner, stream_id)

    async def entry_time(self, stream_id: str, entry_id: str) -> datetime:
        """The inner backend's ``entry_time`` (it has one when it declares
        ``Capabilities.entry_times``)."""
        inner = cast(TimedBackend, self._inner)
        return await self._call("entry_time", [stream_id], inner.entry_time, stream_id, entry_id)

    async def open_reader(self, stream_id: str, start: StartPosition) -> StreamReader:
        inner = await self._call(
            "open_reader", [stream_id], self._inner.open_reader, stream_id, start
        )
        return FaultyStreamReader(self, inner, stream_id)

    async def destroy(self, stream_id: str) -> None:
        await self._call("destroy", [stream_id], self._inner.destroy, stream_id)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> FaultyBackend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<FaultyBackend {self._inner!r} faults={len(self._rules)}>"


class FaultyGroupConsumer:
    """A :class:`~streamsink.backend.GroupConsumer` of a :class:`FaultyBackend`."""

    def __init__(self, backend: FaultyBackend, inner: GroupConsumer, stream_id: str) -> None:
        self._backend = backend
        self._inner = inner
        self._streams = [stream_id]

    @property
    def inner(self) -> GroupConsumer:
        """The wrapped consumer."""
        return self._inner

    @property
    def consumer(self) -> str:
        return self._inner.consumer

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._inner, name)

    async def ensure_group(self, start: StartPosition) -> None:
        await self._backend._call("ensure_group", self._streams, self._inner.ensure_group, start)

    async def read_new(self, count: int, block: float) -> Sequence[Record]:
        return await self._backend._call(
            "read_new", self._streams, self._inner.read_new, count, block
        )

    async def read_own_pending(self, after: str | None, count: int) -> Sequence[Record]:
        return await self._backend._call(
            "read_own_pending", self._streams, self._inner.read_own_pending, after, count
        )

    async def claim_idle(self, min_idle: float, count: int) -> Sequence[Record]:
        return await self._backend._call(
            "claim_idle", self._streams, self._inner.claim_idle, min_idle, count
        )

    async def pending_summary(self) -> PendingSummary:
        """The inner consumer's ``pending_summary`` (it has one when its backend declares
        ``Capabilities.pending_summary``)."""
        inner = cast(SummarizingGroupConsumer, self._inner)
        return await self._backend._call("pending_summary", self._streams, inner.pending_summary)

    async def ack(self, entry_ids: Sequence[str]) -> None:
        await self._backend._call("ack", self._streams, self._inner.ack, entry_ids)

    async def nack(self, keys: Sequence[DeliveryKey]) -> None:
        await self._backend._call("nack", self._streams, self._inner.nack, keys)

    async def touch(self, keys: Sequence[DeliveryKey]) -> None:
        await self._backend._call("touch", self._streams, self._inner.touch, keys)

    async def term(self, entry_ids: Sequence[str]) -> None:
        """The inner consumer's ``term`` (it has one when its backend declares
        ``Capabilities.term``)."""
        inner = cast(TerminatingGroupConsumer, self._inner)
        await self._backend._call("term", self._streams, inner.term, entry_ids)

    async def aclose(self) -> None:
        await self._inner.aclose()


class FaultyStreamReader:
    """A :class:`~streamsink.backend.StreamReader` of a :class:`FaultyBackend`."""

    def __init__(self, backend: FaultyBackend, inner: StreamReader, stream_id: str) -> None:
        self._backend = backend
        self._inner = inner
        self._streams = [stream_id]

    @property
    def inner(self) -> StreamReader:
        """The wrapped reader."""
        return self._inner

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._inner, name)

    async def read(self, count: int, block: float) -> Sequence[Record]:
        return await self._backend._call("read", self._streams, self._inner.read, count, block)

    async def aclose(self) -> None:
        await self._inner.aclose()
