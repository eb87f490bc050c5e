"""``RuntimeStreams`` and ``connect``: one backend, its sink, and the subscribers made from it."""

from __future__ import annotations

import os
import weakref
from collections.abc import Generator
from types import TracebackType
from typing import Any

import attrs
from anyio.abc import AsyncResource

from ._exceptions import ConfigurationError
from ._options import SubscriberOptions
from ._plugins import open_backend
from ._runtime_statistics import RuntimeStatistics, SubscriptionTally
from ._sink import SinkOptions, StreamSink
from ._subscriber import StreamSubscriber
from .backend import Backend, BackendURL

__all__ = ["DEFAULT_URL", "URL_ENV", "RuntimeStreams", "connect"]

URL_ENV = "STREAMSINK_URL"
DEFAULT_URL = "memory://"


class RuntimeStreams(AsyncResource):
    """Owns one backend: a sink for publishing and a factory of subscribers.

    ``aclose`` closes the sink, stops every subscriber made here, then closes the backend if this
    object owns it (it does when made from a URL).

    Subscribers are referred to weakly, except while they have a subscription open: one that was
    closed, or dropped by the application with nothing open, is garbage like any other object,
    so making a subscriber per request does not grow the runtime.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        sink_options: SinkOptions | None = None,
        subscriber_options: SubscriberOptions | None = None,
        owns_backend: bool = True,
    ) -> None:
        self._backend = backend
        self._owns_backend = owns_backend
        self._sink = StreamSink(backend, sink_options)
        self._subscriber_options = subscriber_options or SubscriberOptions()
        # Every subscriber made here that is still alive; those with a subscription open are
        # also in `_busy`, which keeps them alive until their last subscription closes.
        self._subscribers: weakref.WeakSet[StreamSubscriber] = weakref.WeakSet()
        self._busy: set[StreamSubscriber] = set()
        self._tally = SubscriptionTally()
        self._closed = False

    @property
    def backend(self) -> Backend:
        return self._backend

    @property
    def sink(self) -> StreamSink:
        return self._sink

    def new_subscriber(
        self, options: SubscriberOptions | None = None, **overrides: Any
    ) -> StreamSubscriber:
        """A subscriber on this backend. ``overrides`` (e.g. ``group="drain"``) replace fields of
        ``options``, or of the defaults given to :func:`connect`.

        :raises ConfigurationError: an unknown or invalid option.
        """
        base = options or self._subscriber_options
        unknown = sorted(set(overrides) - set(attrs.fields_dict(SubscriberOptions)))
        if unknown:
            accepted = ", ".join(attrs.fields_dict(SubscriberOptions))
            raise ConfigurationError(
                f"unknown subscriber option(s) {', '.join(unknown)}; accepted: {accepted}"
            )
        merged = attrs.evolve(base, **overrides)
        subscriber = StreamSubscriber(self._backend, merged)
        subscriber._keep_alive_in(self._busy, self._tally)
        self._subscribers.add(subscriber)
        return subscriber

    @property
    def closed(self) -> bool:
        return self._closed

    def statistics(self) -> RuntimeStatistics:
        """A snapshot of the counters of the sink and of every subscription made from this
        runtime's subscribers (closed ones included), in total and by group. Cheap: it reads
        counters, it does not ask the backend."""
        open_now = [s for subscriber in self._busy for s in subscriber._open_subscriptions()]
        return self._tally.snapshot(self._sink.statistics(), open_now)

    async def aclose(self) -> None:
        """Close the sink and every subscriber; close the backend if owned. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._sink.aclose()
        for subscriber in list(self._subscribers):  # a copy: closing may release some
            await subscriber.aclose()
        if self._owns_backend:
            await self._backend.aclose()


_BACKEND_METHODS = ("append", "open_group_consumer", "open_reader", "destroy", "aclose")


class _Connecting:
    """``await connect(...)`` or ``async with connect(...) as streams``."""

    def __init__(self, target: str | BackendURL | Backend | None, kwargs: dict[str, Any]) -> None:
        self._target = target
        self._kwargs = kwargs
        self._streams: RuntimeStreams | None = None

    async def _open(self) -> RuntimeStreams:
        target = self._target
        if target is None:
            target = os.environ.get(URL_ENV) or DEFAULT_URL
        if isinstance(target, str | BackendURL):
            backend = await open_backend(target)
            return RuntimeStreams(backend, owns_backend=True, **self._kwargs)
        if not all(callable(getattr(target, name, None)) for name in _BACKEND_METHODS):
            raise ConfigurationError(
                f"connect() takes a backend URL or a Backend object, got {type(target).__name__}"
            )
        return RuntimeStreams(target, owns_backend=False, **self._kwargs)

    def __await__(self) -> Generator[Any, None, RuntimeStreams]:
        return self._open().__await__()

    async def __aenter__(self) -> RuntimeStreams:
        self._streams = await self._open()
        return self._streams

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._streams is not None:
            await self._streams.aclose()


def connect(
    url_or_backend: str | BackendURL | Backend | None = None,
    *,
    sink_options: SinkOptions | None = None,
    subscriber_options: SubscriberOptions | None = None,
) -> _Connecting:
    """Open streams on a backend URL (default ``$STREAMSINK_URL``, else ``memory://``) or on a
    ready backend object (which the caller keeps owning).

    Use ``async with connect(url) as streams`` or ``streams = await connect(url)``.

    :raises ConfigurationError: a malformed URL or options.
    :raises BackendNotFoundError: no installed backend serves the scheme.
    :raises BackendUnavailableError: the backend cannot be reached.
    """
    return _Connecting(
        url_or_backend, {"sink_options": sink_options, "subscriber_options": subscriber_options}
    )
