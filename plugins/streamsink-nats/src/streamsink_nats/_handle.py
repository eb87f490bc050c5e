"""What group consumers and readers share: their state checks and their wake-up."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import anyio
from nats.aio.msg import Msg
from streamsink import ClosedError, ConfigurationError, StreamDestroyedError
from streamsink.backend import Record

if TYPE_CHECKING:
    from ._backend import NatsBackend

__all__ = ["Handle", "record_of"]


class Handle:
    """A handle on one stream of a backend; :meth:`wake` ends its blocked reads at once."""

    def __init__(self, backend: NatsBackend, stream_id: str, kind: str) -> None:
        self.backend = backend
        self.stream_id = stream_id
        self._kind = kind
        self._generation = backend.generation(stream_id)
        self._closed = False
        self._scopes: set[anyio.CancelScope] = set()
        self.incarnation: object = None  # creation time of the JetStream stream when joined

    def wake(self) -> None:
        for scope in self._scopes:
            scope.cancel()

    def check(self) -> None:
        """:raises ClosedError: closed (or its backend is). :raises StreamDestroyedError: the
        stream was destroyed through this backend since the handle was opened."""
        if self._closed:
            raise ClosedError(f"this {self._kind} on {self.stream_id!r} is closed")
        self.backend.check_open()
        self.backend.raise_if_destroyed(self.stream_id, self._generation)

    async def raise_if_vanished(self) -> None:
        """:raises StreamDestroyedError: the stream is gone from the server, or is another
        stream by now (destroyed by another connection, or the server's data was wiped):
        positions on the old one mean nothing on a new one, whose sequences start over."""
        self.check()
        now = await self.backend.incarnation(self.stream_id)
        if now is None or now != self.incarnation:
            raise StreamDestroyedError(
                f"stream {self.stream_id!r} was destroyed on the server (by another connection, "
                "or its data was wiped)"
            )

    @contextmanager
    def wakeable(self) -> Iterator[anyio.CancelScope]:
        """A scope that :meth:`wake` cancels; after it was woken, :meth:`check` raises."""
        with anyio.CancelScope() as scope:
            self._scopes.add(scope)
            try:
                yield scope
            except Exception:
                # A close or destroy meanwhile (the driver reports a closed connection its own
                # way): say that instead.
                self.check()
                raise
            finally:
                self._scopes.discard(scope)
        if scope.cancelled_caught:
            self.check()

    def close(self) -> None:
        self._closed = True
        self.wake()
        self.backend.unregister(self)


def check_count(count: int) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigurationError(f"count must be an integer >= 1, got {count!r}")


def record_of(msg: Msg, delivery_count: int) -> Record:
    """A streamsink record of a JetStream message (headers carry name and topic)."""
    from ._backend import NAME_HEADER, TOPIC_HEADER

    headers = msg.headers or {}
    return Record(
        str(msg.metadata.sequence.stream),
        headers.get(NAME_HEADER),
        msg.data,
        headers.get(TOPIC_HEADER),
        delivery_count,
    )
