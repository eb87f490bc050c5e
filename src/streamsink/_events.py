"""The events a runtime publishes: the type vocabulary, the ``Event`` protocol and ``StreamEvent``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs
import orjson

from ._exceptions import ConfigurationError, DecodeError

if TYPE_CHECKING:
    from ._timestamps import GoTime
    from ._wire import Wire
    from .backend import Gap
    from .payloads import Payload, RawPayload

__all__ = [
    "EventType",
    "Event",
    "StreamEvent",
    "decoded_event",
    "UnfrozenEvent",
    "raw_json",
    "set_event_entry_id",
    "set_event_gap",
    "set_event_source",
    "set_event_stream_id",
    "set_event_topic",
]


class EventType(StrEnum):
    """The 19 event types an agent runtime emits (the envelope's ``type``).

    ``StreamEvent.type`` is a plain ``str``: members compare equal to their values, and types
    outside this vocabulary are carried unchanged.
    """

    ASSISTANT_REPLY = "assistant_reply"
    PLANNER_THOUGHT = "planner_thought"
    PROMPT_RENDERED = "prompt_rendered"
    TOOL_START = "tool_start"
    TOOL_UPDATE = "tool_update"
    TOOL_CALL_ARGS_DELTA = "tool_call_args_delta"
    TOOL_OUTPUT_DELTA = "tool_output_delta"
    TOOL_END = "tool_end"
    AWAIT_CLARIFICATION = "await_clarification"
    AWAIT_CONFIRMATION = "await_confirmation"
    AWAIT_QUESTIONS = "await_questions"
    AWAIT_EXTERNAL_TOOLS = "await_external_tools"
    TOOL_AUTHORIZATION = "tool_authorization"
    USAGE = "usage"
    WORKFLOW = "workflow"
    CHILD_RUN_LINKED = "child_run_linked"
    SESSION_STREAM_STARTED = "session_stream_started"
    SESSION_STREAM_END = "session_stream_end"
    RUN_STREAM_END = "run_stream_end"


@runtime_checkable
class Event(Protocol):
    """What a sink can publish. ``server_data`` (raw JSON bytes) is optional on implementations."""

    @property
    def type(self) -> str: ...
    @property
    def run_id(self) -> str: ...
    @property
    def session_id(self) -> str: ...
    @property
    def event_key(self) -> str: ...
    @property
    def payload(self) -> Any: ...


def raw_json(value: object) -> bytes | None:
    """Normalise a ``server_data`` value to raw JSON bytes, or None.

    ``None`` and empty or blank text/bytes give None (as Go's ``rawjson.Message`` encodes them as
    ``null``). ``str``/``bytes`` must already be JSON; any other value is serialised with orjson.

    :raises ConfigurationError: text that is not valid JSON, or a value orjson cannot encode.
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        if not data.strip():
            return None
        try:
            orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ConfigurationError(f"server_data is not valid JSON: {exc}") from None
        return data
    try:
        return orjson.dumps(value)
    except TypeError as exc:
        raise ConfigurationError(f"server_data cannot be encoded as JSON: {exc}") from None


def _source_value(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None or type(value) is bytes:
        return
    from ._wire import Wire  # what evolve passes on once the source was read

    if type(value) is not Wire:
        raise ConfigurationError(
            f"StreamEvent.source must be the envelope bytes the event was decoded from, or "
            f"None, got {type(value).__name__}"
        )


@attrs.frozen(kw_only=False)
class StreamEvent:
    """An event to publish, or one decoded from a stream.

    ``server_data`` is raw JSON (bytes) embedded as-is in the envelope; text, bytes or any
    JSON-serialisable value is accepted and normalised by :func:`raw_json`.
    ``timestamp``, ``entry_id`` and ``stream_id`` are set on decoded events (the publish time, the
    backend's entry id and the stream it came from) and are None on events never on a stream.
    ``gap`` is set on a received event when entries right before it were trimmed from the stream
    before the subscription read them (a :class:`~streamsink.Gap`; None otherwise): an SSE bridge
    tells its client, a drain knows its copy has a hole. ``topic`` is the entry's topic (pulse
    field ``t``) on received events, None when it has none. A sink ignores both.

    ``source`` is, on a decoded event, the envelope bytes it was decoded from (the bytes read,
    not a copy; None on events never decoded; not compared by ``==``). It is what makes a relay
    byte-exact: :func:`~streamsink.encode_envelope` and a sink write a decoded event's text
    fields as Go writes strings, its timestamp (when ``SinkOptions.timestamps="event"``) with
    its nanoseconds and offset, and its payload and server_data, while they are still the ones
    received, as their received bytes; an event that is otherwise equal to one Go wrote is
    written as Go wrote it. ``attrs.evolve`` keeps ``source``: what was changed is written
    anew, the rest as received.
    """

    type: str
    run_id: str
    session_id: str = ""
    event_key: str = ""
    payload: Any = None
    server_data: bytes | None = attrs.field(default=None, converter=raw_json)
    timestamp: datetime | None = attrs.field(default=None, kw_only=True)
    entry_id: str | None = attrs.field(default=None, kw_only=True)
    stream_id: str | None = attrs.field(default=None, kw_only=True)
    gap: Gap | None = attrs.field(default=None, kw_only=True)
    topic: str | None = attrs.field(default=None, kw_only=True)
    # The source bytes, replaced by what read_wire makes of them once that is asked for (one slot
    # for both: decoding sets one slot more, not two; evolve passes on what was found).
    _source: bytes | Wire | None = attrs.field(
        default=None, kw_only=True, eq=False, repr=False, alias="source", validator=_source_value
    )

    @property
    def source(self) -> bytes | None:
        """The envelope bytes this event was decoded from (see the class docstring)."""
        held = self._source
        return held if held is None or type(held) is bytes else held.data  # type: ignore[union-attr]

    def server_data_value(self) -> Any:
        """``server_data`` parsed from JSON (None when absent)."""
        return None if self.server_data is None else orjson.loads(self.server_data)

    def typed_payload(self) -> Payload | RawPayload:
        """The payload as its type's class from :mod:`streamsink.payloads` (``ToolEnd`` for a
        ``tool_end``); :func:`streamsink.typed_payload` of this event. Never raises for what the
        event holds: unknown types and misshapen payloads give a ``RawPayload``, unknown keys
        are kept in ``unknown_fields``."""
        from .payloads import typed_payload  # loaded on first use, as streamsink.typed_payload

        return typed_payload(self)

    def _received(self) -> Wire | None:
        """``source`` as Go's decoder reads it (found once, then kept), or None: no source, or
        one that is not an envelope Go decodes."""
        held = self._source
        if not isinstance(held, bytes):
            return held
        from ._wire import read_wire  # only events relayed, or asked about, read it

        try:
            wire = read_wire(held)
        except DecodeError:
            return None
        set_event_source(self, wire)
        return wire

    def _received_time(self) -> GoTime | None:
        """The received timestamp, while ``timestamp`` is still the one decoded from it."""
        wire = self._received()
        if wire is None or wire.timestamp is None:
            return None
        from ._timestamps import go_datetime

        return wire.timestamp if go_datetime(wire.timestamp) == self.timestamp else None

    @property
    def timestamp_ns(self) -> int | None:
        """The timestamp in nanoseconds since the Unix epoch, at the precision it was received
        with (Go writes nanoseconds; ``timestamp`` keeps microseconds), or of ``timestamp`` on
        other events; None without one. Also set when ``timestamp`` is None because the
        instant is outside the years 1 to 9999 in UTC (Go reads years 0 to 9999 in any
        offset)."""
        received = self._received_time()
        if received is not None:
            return received.ns
        if self.timestamp is None:
            return None
        from ._timestamps import datetime_ns

        return datetime_ns(self.timestamp)

    @property
    def timestamp_offset(self) -> int | None:
        """Seconds east of UTC of the offset the timestamp was written with (``+02:00`` is
        7200, ``Z`` 0; a Go time keeps the offset it was parsed with and writes it back); 0 on
        other events with a timestamp, None without one."""
        received = self._received_time()
        if received is not None:
            return received.offset
        return None if self.timestamp is None else 0

    @property
    def payload_exact(self) -> bool:
        """False when ``payload`` is not exactly what its received bytes say, because no Python
        value read from JSON can be: a number beyond a float's range (given as a
        ``decimal.Decimal`` of its text, not infinity), an integer beyond 64 bits (given as the
        nearest float, as orjson and Go's ``any`` read it), text with bytes that are not UTF-8
        or with escapes of lone surrogates (given with U+FFFD in their place, as Go decodes
        it). The bytes are kept in ``source``, and a relay writes them. True otherwise, and on
        events not decoded or whose payload was replaced (floats rounded to the nearest double
        and repeated keys keeping their last value count as exact: Go reads them so too)."""
        wire = self._received()
        if wire is None or wire.payload_exact:
            return True
        from ._gowrite import same_value

        return not same_value(self.payload, wire.payload_value()[0])


_new = object.__new__


class UnfrozenEvent(StreamEvent):
    """A :class:`StreamEvent` being built by the decoder, which makes one per entry read.

    It adds no slot, so it has ``StreamEvent``'s layout, without the frozen ``__setattr__``:
    the decoder makes one with ``object.__new__``, sets its twelve fields by plain attribute
    stores, and turns it into a ``StreamEvent`` by assigning ``__class__`` (allowed between
    classes of the same layout). It is never handed out. That costs a third of setting each
    slot through its descriptor's ``__set__`` (a call each), and a fifth of attrs' frozen
    ``__init__`` (``python -m benchmarks.micro``).
    """

    __slots__ = ()
    # Both restored (not only __setattr__): with either one a Python function, every store
    # would go through a Python-level __setattr__ lookup.
    __setattr__ = object.__setattr__
    __delattr__ = object.__delattr__


def _slot_setter(name: str) -> Callable[[StreamEvent, Any], None]:
    """The setter of ``StreamEvent``'s slot ``name``, found by name (so that reordering the
    class's fields cannot make one field's value land in another)."""
    setter: Callable[[StreamEvent, Any], None] = StreamEvent.__dict__[name].__set__
    return setter


#: Set ``StreamEvent.gap``, ``.topic``, its source, or where it was read (a drain's copy) on an
#: event the subscription received (it is frozen to everyone else).
set_event_entry_id = _slot_setter("entry_id")
set_event_stream_id = _slot_setter("stream_id")
set_event_gap = _slot_setter("gap")
set_event_topic = _slot_setter("topic")
set_event_source = _slot_setter("_source")
if {field.name for field in attrs.fields(StreamEvent)} != {
    "type", "run_id", "session_id", "event_key", "payload", "server_data", "timestamp",
    "entry_id", "stream_id", "gap", "topic", "_source",
}:  # fmt: skip
    raise AssertionError(
        "StreamEvent gained or lost a field: decoded_event and decode_entry set each"
    )


def decoded_event(
    type: str,
    run_id: str,
    session_id: str,
    event_key: str,
    payload: Any,
    server_data: bytes | None,
    timestamp: datetime | None,
    entry_id: str | None,
    stream_id: str | None,
    source: bytes | None,
    wire: Wire | None = None,
) -> StreamEvent:
    """A :class:`StreamEvent` from fields the envelope decoder has already checked.

    Decoding builds one per entry read, so it skips ``__init__``'s converter and indirection
    (a third of the cost, ``python -m benchmarks.micro``). ``server_data`` must be valid raw
    JSON bytes or None; ``source`` the envelope's bytes, ``wire`` what :func:`read_wire` made of
    them if the decoder read them so.
    """
    event: Any = _new(UnfrozenEvent)
    event.type = type
    event.run_id = run_id
    event.session_id = session_id
    event.event_key = event_key
    event.payload = payload
    event.server_data = server_data
    event.timestamp = timestamp
    event.entry_id = entry_id
    event.stream_id = stream_id
    event.gap = None
    event.topic = None
    event._source = source if wire is None else wire
    event.__class__ = StreamEvent
    return event  # type: ignore[no-any-return]
