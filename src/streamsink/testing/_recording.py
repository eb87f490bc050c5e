"""``RecordingSink``: a Sink for unit suites that only assert what was sent."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from anyio.abc import AsyncResource

from .._events import Event
from .._exceptions import SinkClosedError
from .._sink import PublishedEvent
from .._streams import default_stream_id, validate_stream_id

__all__ = ["RecordingSink"]


class RecordingSink(AsyncResource):
    """Keeps every sent event in ``events`` (and ``published``) instead of writing anywhere.

    It applies the real sink's checks (stream id derivation and validation, closed state), so a
    unit suite catches a missing session id as production would. Entry ids are ``1-0``, ``2-0``…
    """

    def __init__(self, *, stream_id: Callable[[Event], str] = default_stream_id) -> None:
        self._stream_id = stream_id
        self.published: list[PublishedEvent] = []
        self.closed = False

    @property
    def events(self) -> list[Event]:
        return [p.event for p in self.published]

    def by_type(self, event_type: str) -> list[Event]:
        """The recorded events of one type, in send order."""
        return [e for e in self.events if e.type == event_type]

    async def send(self, event: Event) -> PublishedEvent:
        if self.closed:
            raise SinkClosedError("send() on a closed sink")
        stream_id = validate_stream_id(self._stream_id(event))
        published = PublishedEvent(event, stream_id, f"{len(self.published) + 1}-0")
        self.published.append(published)
        return published

    async def send_many(self, events: Iterable[Event]) -> list[PublishedEvent]:
        return [await self.send(event) for event in events]

    def clear(self) -> None:
        self.published.clear()

    async def aclose(self) -> None:
        self.closed = True
