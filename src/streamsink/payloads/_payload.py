"""The base of the 19 event payload classes: a Go struct that knows its event type."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from ._schema import GoStruct

if TYPE_CHECKING:
    from .._events import StreamEvent

__all__ = ["Payload"]


@attrs.frozen(kw_only=True)
class Payload(GoStruct):
    """The payload of one event type, as loom's ``runtime/agent/stream`` declares it.

    Build one with keyword arguments (every field defaults to Go's zero value, as a Go struct
    literal does; a value of the wrong type raises ``TypeError``), then send it with
    :meth:`to_event`, or put :meth:`~GoStruct.to_json` in a ``StreamEvent`` yourself.
    """

    #: The event type this payload travels under (an :class:`~streamsink.EventType` value).
    EVENT_TYPE: ClassVar[str] = ""

    def to_event(
        self,
        run_id: str,
        session_id: str = "",
        event_key: str = "",
        *,
        server_data: Any = None,
    ) -> StreamEvent:
        """A :class:`~streamsink.StreamEvent` of this payload's type carrying :meth:`to_json`,
        which any sink encodes exactly as Go does (``server_data`` as ``StreamEvent`` takes it).

        :raises TypeError: a map or raw JSON field holds a value JSON cannot hold.
        :raises ConfigurationError: ``server_data`` is not valid JSON.
        """
        # Imported here: streamsink._events may import this package (StreamEvent.typed_payload).
        from .._events import StreamEvent

        return StreamEvent(
            self.EVENT_TYPE,
            run_id,
            session_id,
            event_key,
            self.to_json(),
            server_data=server_data,
        )
