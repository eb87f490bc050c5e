"""The events a runtime publishes: the type vocabulary, the ``Event`` protocol and ``StreamEvent``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs
import orjson

from ._exceptions import ConfigurationError
from ._slots import slot_setters

if TYPE_CHECKING:
    from .backend import Gap
    from .payloads import Payload, RawPayload

__all__ = [
    "EventType",
    "Event",
    "StreamEvent",
    "decoded_event",
    "raw_json",
    "set_event_gap",
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


_new = object.__new__
# The slots' own setters, minus the server_data converter, whose work the decoder has done.
_SETTERS = slot_setters(StreamEvent)


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
) -> StreamEvent:
    """A :class:`StreamEvent` from fields the envelope decoder has already checked.

    Decoding builds one per entry read, so it skips ``__init__``'s converter and indirection
    (a third of the cost, ``python -m benchmarks.micro``). ``server_data`` must be valid raw
    JSON bytes or None.
    """
    event = _new(StreamEvent)
    (
        set_type,
        set_run,
        set_session,
        set_key,
        set_payload,
        set_data,
        set_ts,
        set_id,
        set_stream,
        set_gap,
        set_topic,
    ) = _SETTERS
    set_type(event, type)
    set_run(event, run_id)
    set_session(event, session_id)
    set_key(event, event_key)
    set_payload(event, payload)
    set_data(event, server_data)
    set_ts(event, timestamp)
    set_id(event, entry_id)
    set_stream(event, stream_id)
    set_gap(event, None)
    set_topic(event, None)
    return event


#: Set ``StreamEvent.gap`` and ``.topic`` on an event the subscription received (it is frozen to
#: everyone else).
set_event_gap = _SETTERS[-2]
set_event_topic = _SETTERS[-1]
