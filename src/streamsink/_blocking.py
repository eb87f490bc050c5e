"""A blocking facade for producers that are not async: threads, Django views, Celery tasks."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterable
from contextlib import ExitStack
from types import TracebackType
from typing import Final, Self

from anyio.from_thread import BlockingPortal, start_blocking_portal

from ._events import Event
from ._exceptions import ConfigurationError, SinkClosedError
from ._runtime import RuntimeStreams, connect
from ._sink import PublishedEvent, SinkOptions
from .backend import Backend, BackendURL

__all__ = ["BlockingSink"]

_ASYNC_BACKENDS: Final = ("asyncio", "trio")


class BlockingSink:
    """Publish from synchronous code.

    An event loop of its own runs in a background thread (an anyio blocking portal) and owns a
    :class:`~streamsink.RuntimeStreams` on ``target`` (a URL, default ``$STREAMSINK_URL`` else
    ``memory://``, or a backend object the caller keeps owning). ``send`` and ``send_many``
    block the calling thread until the backend took the events and raise exactly what
    :class:`~streamsink.StreamSink` raises.

    Thread-safe: any number of threads may send at once; their sends share backend round trips
    as concurrent async sends do. ``close`` (or leaving the ``with`` block) waits for the sends
    in flight, then closes the streams and stops the thread: nothing a ``send`` returned for is
    lost by closing, and sends after it raise :class:`SinkClosedError`.

    Not for async code: a call from a running event loop would block that loop, so it raises
    ``RuntimeError`` (await ``streams.sink.send`` there instead).

    :raises ConfigurationError: ``async_backend`` is not ``"asyncio"`` or ``"trio"``, or the URL
        or options are malformed.
    :raises BackendNotFoundError: no installed backend serves the URL's scheme.
    :raises BackendUnavailableError: the backend cannot be reached.
    """

    def __init__(
        self,
        target: str | BackendURL | Backend | None = None,
        *,
        sink_options: SinkOptions | None = None,
        async_backend: str = "asyncio",
    ) -> None:
        if async_backend not in _ASYNC_BACKENDS:
            raise ConfigurationError(
                f"BlockingSink async_backend={async_backend!r} is not supported: "
                f"expected one of {', '.join(_ASYNC_BACKENDS)}"
            )
        _refuse_event_loop("BlockingSink()")
        self._state = threading.Condition()
        self._in_flight = 0
        self._closed = False
        self._exit = ExitStack()
        self._portal: BlockingPortal = self._exit.enter_context(
            start_blocking_portal(async_backend, name="streamsink-blocking-sink")
        )
        try:
            self._streams: RuntimeStreams = self._portal.call(_open, target, sink_options)
        except BaseException:
            self._exit.close()
            raise

    @property
    def streams(self) -> RuntimeStreams:
        """The streams this facade publishes through (owned by its event loop's thread)."""
        return self._streams

    def send(self, event: Event) -> PublishedEvent:
        """Publish one event and return where it went: :meth:`StreamSink.send`, blocking."""
        self._enter("send()")
        try:
            return self._portal.call(self._streams.sink.send, event)
        finally:
            self._leave()

    def send_many(self, events: Iterable[Event]) -> list[PublishedEvent]:
        """Publish several events in one round trip, in order: :meth:`StreamSink.send_many`,
        blocking. Every event is validated before anything is written."""
        self._enter("send_many()")
        try:
            # Materialised here, in the caller's thread: a generator must not run in the loop's.
            return self._portal.call(self._streams.sink.send_many, _listed(events))
        finally:
            self._leave()

    def close(self) -> None:
        """Wait for the sends in flight, close the streams, stop the thread. Idempotent."""
        _refuse_event_loop("BlockingSink.close()")
        with self._state:
            if self._closed:
                return
            self._closed = True
            self._state.wait_for(lambda: self._in_flight == 0)
        try:
            self._portal.call(self._streams.aclose)
        finally:
            self._exit.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _enter(self, call: str) -> None:
        _refuse_event_loop(f"BlockingSink.{call}")
        with self._state:
            if self._closed:
                raise SinkClosedError(f"{call} on a closed BlockingSink")
            self._in_flight += 1

    def _leave(self) -> None:
        with self._state:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._state.notify_all()


async def _open(
    target: str | BackendURL | Backend | None, options: SinkOptions | None
) -> RuntimeStreams:
    return await connect(target, sink_options=options)


def _listed(events: Iterable[Event]) -> list[Event] | Iterable[Event]:
    # A non-iterable is passed on as it is, so send_many raises its own ConfigurationError.
    try:
        return list(events)
    except TypeError:
        return events


def _refuse_event_loop(call: str) -> None:
    library = _running_async_library()
    if library is not None:
        raise RuntimeError(
            f"{call} blocks its thread and was called from {library} code: "
            "await streams.sink.send() there instead"
        )


def _running_async_library() -> str | None:
    # Asked directly rather than through sniffio, which anyio no longer brings along.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return "asyncio"
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_trio_token()
        except RuntimeError:
            return None
        return "trio"
    return None
