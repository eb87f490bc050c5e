"""What every conformance check gets: fresh backends on one broker, unique names, short timings."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar, cast

import anyio
import attrs

from .._events import StreamEvent
from .._options import SubscriberOptions
from .._sink import PublishedEvent, SinkOptions, StreamSink
from .._subscriber import StreamSubscriber
from ..backend import Backend, Capabilities, Record, StartPosition

__all__ = ["BackendFactory", "Harness", "Timing"]

T = TypeVar("T")


class BackendFactory(Protocol):
    """Opens a new connection to the broker under test; every call reaches the same broker.

    With ``maxlen`` set, the backend trims streams to about that many entries. A backend that
    declares :attr:`~streamsink.backend.Capabilities.max_age` (or ``idle_ttl``) is also called
    with ``max_age=<seconds>`` (``idle_ttl=<seconds>``), floats, by the checks of that
    retention rule, and must then apply it; others are never called with them.
    """

    def __call__(self, *, maxlen: int | None = None) -> Awaitable[Backend]: ...


@attrs.frozen
class Timing:
    """The short periods the checks use, so real-time rules run in a fraction of a second."""

    grace: float = 0.3  #: ack_grace_period for redelivery checks
    claim: float = 0.05  #: claim_interval
    long_grace: float = 30.0  #: a grace period no check waits for
    timeout: float = 10.0  #: longest wait for anything expected


class Harness:
    """Per-check helpers. :meth:`aclose` destroys every stream the check named (through
    :meth:`stream` or :meth:`session`) and closes every backend it opened, so a check leaves
    nothing behind on a shared broker."""

    def __init__(self, factory: BackendFactory, capabilities: Capabilities, timing: Timing) -> None:
        self.factory = factory
        self.capabilities = capabilities
        self.timing = timing
        self._backends: list[Backend] = []
        self._streams: list[str] = []
        self._token = uuid.uuid4().hex[:10]
        self._names = 0

    async def backend(
        self,
        *,
        maxlen: int | None = None,
        max_age: float | None = None,
        idle_ttl: float | None = None,
    ) -> Backend:
        """A new backend from the factory, given only the options that are set."""
        options = {
            name: value
            for name, value in (("maxlen", maxlen), ("max_age", max_age), ("idle_ttl", idle_ttl))
            if value is not None
        }
        # The retention keywords are beyond BackendFactory's signature: only factories of
        # backends declaring them get them (see BackendFactory).
        factory = cast(Callable[..., Awaitable[Backend]], self.factory)
        backend = await factory(**options)
        self._backends.append(backend)
        return backend

    async def aclose(self) -> None:
        """Close every backend the check opened, then destroy its streams through a new one.

        :raises StreamsinkError: the backend could not be opened or a destroy failed.
        """
        with anyio.CancelScope(shield=True):
            for backend in reversed(self._backends):
                await backend.aclose()
            self._backends.clear()
            if not self._streams:
                return
            cleaner = await self.factory()
            try:
                for stream_id in self._streams:
                    await cleaner.destroy(stream_id)
            finally:
                self._streams.clear()
                await cleaner.aclose()

    def name(self, prefix: str) -> str:
        """A name no other check or run uses (stream ids, groups, sessions)."""
        self._names += 1
        return f"conformance-{self._token}-{prefix}{self._names}"

    def stream(self, prefix: str = "stream") -> str:
        """A stream id no other check uses, destroyed when the check ends."""
        stream_id = self.name(prefix)
        self._streams.append(stream_id)
        return stream_id

    def session(self) -> str:
        """A session id no other check uses; its stream and dead-letter stream are destroyed
        when the check ends."""
        session = self.name("session")
        self._streams += [f"session/{session}", f"session/{session}:dlq"]
        return session

    def event(self, session: str, index: int = 0, **fields: Any) -> StreamEvent:
        fields.setdefault("payload", {"index": index})
        return StreamEvent(fields.pop("type", "tool_start"), f"run-{index}", session, **fields)

    async def publish(
        self, backend: Backend, session: str, count: int, *, first: int = 0
    ) -> list[PublishedEvent]:
        sink = StreamSink(backend)
        return [await sink.send(self.event(session, first + i)) for i in range(count)]

    def subscriber(self, backend: Backend, **options: Any) -> StreamSubscriber:
        options.setdefault("group", self.name("group"))
        options.setdefault("ack_grace_period", self.timing.grace)
        options.setdefault("claim_interval", self.timing.claim)
        options.setdefault("start", StartPosition.oldest())
        options.setdefault("reconnect_timeout", self.timing.timeout)
        return StreamSubscriber(backend, SubscriberOptions(**options))

    async def take(self, subscription: AsyncIterator[T], count: int) -> list[T]:
        """The next ``count`` items, failing if they do not come within the timeout."""
        items: list[T] = []
        with anyio.fail_after(self.timing.timeout):
            async for item in subscription:
                items.append(item)
                if len(items) == count:
                    break
        if len(items) < count:
            raise AssertionError(f"subscription ended after {len(items)} of {count} items")
        return items

    async def first_of(self, *subscriptions: AsyncIterator[T]) -> T:
        """The first item any of ``subscriptions`` hands out (the others stop waiting), failing
        if none comes within the timeout."""
        got: list[T] = []
        async with anyio.create_task_group() as tg:

            async def wait_on(subscription: AsyncIterator[T]) -> None:
                got.extend(await self.take(subscription, 1))
                tg.cancel_scope.cancel()

            for subscription in subscriptions:
                tg.start_soon(wait_on, subscription)
        return got[0]

    async def nothing_within(self, subscription: AsyncIterator[Any], seconds: float) -> None:
        """Assert that nothing arrives for ``seconds``."""
        with anyio.move_on_after(seconds):
            async for item in subscription:
                raise AssertionError(f"expected nothing, got {item!r}")

    async def read_all(self, backend: Backend, stream_id: str) -> Sequence[Record]:
        """Every entry of a stream, through a fan-out reader from the oldest."""
        reader = await backend.open_reader(stream_id, StartPosition.oldest())
        records: list[Record] = []
        try:
            while batch := await reader.read(1000, 0.05):
                records.extend(batch)
        finally:
            await reader.aclose()
        return records

    def sink(self, backend: Backend, **options: Any) -> StreamSink:
        return StreamSink(backend, SinkOptions(**options))

    def reading_modes(self) -> list[dict[str, Any]]:
        """Subscriber options for each way the backend can read: fan-out reader, consumer group."""
        modes: list[dict[str, Any]] = []
        if self.capabilities.fan_out:
            modes.append({"group": None})
        if self.capabilities.consumer_groups:
            modes.append({})
        return modes
