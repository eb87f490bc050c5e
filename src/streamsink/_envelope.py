"""The JSON envelope: the wire format shared with Go's goa/loom services (docs/interop.md).

Keys in this order, ``?`` omitted when empty or None::

    type, event_key?, run_id, session_id?, timestamp, payload?, server_data?

``timestamp`` is RFC 3339 UTC with ``Z`` and trailing-zero-trimmed fractional seconds (Go's
RFC3339Nano); ``server_data`` is raw JSON embedded as is. Decoding reads what Go's encoding/json
reads; a decoded event keeps its bytes (``StreamEvent.source``) and is written back as Go wrote it.
The parts live in their own modules: timestamps (``_timestamps``), reading JSON as Go does
(``_gojson``), writing it as Go does (``_gowrite``), the envelope as Go decodes it (``_wire``) and
why an envelope cannot be encoded (``_payload_errors``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs
import orjson
from orjson import dumps as _orjson_dumps

from ._decoder import decode_entry, decode_envelope
from ._events import Event, StreamEvent, raw_json
from ._exceptions import ConfigurationError, DecodeError
from ._payload_errors import dumps as _dumps
from ._timestamps import format_go_time, format_timestamp, go_datetime, now_timestamp
from ._timestamps import parse_timestamp as parse_timestamp
from ._wire import Wire, encode_received, read_wire

__all__ = [
    "Envelope",
    "encode_envelope",
    "decode_entry",
    "decode_envelope",
    "event_timestamp",
    "format_timestamp",
    "now_timestamp",
    "parse_timestamp",
    "relay_envelope",
]


def _bytes_or_none(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and type(value) is not bytes:
        raise ConfigurationError(
            f"Envelope.source={type(value).__name__} is invalid: expected the bytes of the "
            "envelope the event was decoded from (StreamEvent.source), or None"
        )


@attrs.frozen(kw_only=True)
class Envelope:
    """One published event as it travels: what :func:`encode_envelope` writes.

    ``source``: the bytes of the envelope the event was decoded from (``StreamEvent.source``),
    or None; with it the envelope is written as Go wrote it (see :func:`encode_envelope`).
    """

    type: str
    event_key: str = ""
    run_id: str = ""
    session_id: str = ""
    timestamp: datetime
    payload: Any = None
    server_data: bytes | None = attrs.field(default=None, converter=raw_json)
    source: bytes | None = attrs.field(default=None, eq=False, repr=False, validator=_bytes_or_none)


def encode_fields(
    type: str,
    event_key: str,
    run_id: str,
    session_id: str,
    timestamp: str,
    payload: Any,
    server_data: bytes | None,
    wire: Wire | None = None,
) -> bytes:
    """Encode envelope fields (timestamp already formatted); the sink's fast path uses it directly.

    With ``wire`` (what a decoded event was decoded from) the fields are written as Go writes
    them, the payload and server_data as received while unchanged (:func:`encode_received`).
    """
    if wire is not None:
        return encode_received(
            wire, type, event_key, run_id, session_id, timestamp, payload, server_data
        )
    if event_key and session_id and payload is not None and not server_data:
        # The usual event, built in one go (the same keys in the same order as below; the
        # sink builds it too, StreamSink._entry).
        doc = {
            "type": type,
            "event_key": event_key,
            "run_id": run_id,
            "session_id": session_id,
            "timestamp": timestamp,
            "payload": payload,
        }
        try:
            return _orjson_dumps(doc)
        except TypeError:
            pass
        return _dumps(doc)  # raises, naming what cannot be encoded (outside the handler, unchained)
    doc = {"type": type}
    if event_key:
        doc["event_key"] = event_key
    doc["run_id"] = run_id
    if session_id:
        doc["session_id"] = session_id
    doc["timestamp"] = timestamp
    if payload is not None:
        doc["payload"] = payload
    if server_data:
        doc["server_data"] = orjson.Fragment(server_data)
    return _dumps(doc)


def _wire_of(source: bytes | None) -> Wire | None:
    """What Go's decoder reads in ``source`` (None without one, or if Go could not read it)."""
    if source is None:
        return None
    try:
        return read_wire(source)
    except DecodeError:
        return None


def encode_envelope(env: Envelope) -> bytes:
    """Encode an envelope as compact UTF-8 JSON in the wire key order.

    With a ``source`` (the envelope was made from a decoded event), it is written as Go's
    ``json.Marshal`` writes loom's envelope: text fields HTML-escaped as Go escapes strings,
    the timestamp, while it is the one received, with its nanoseconds and offset, and the
    payload and server_data, while they are the ones received, as their received bytes
    (compacted and escaped as Go copies a ``json.RawMessage``). So an envelope Go wrote,
    decoded and encoded again, is the same bytes. Without one, orjson writes it.

    :raises ConfigurationError: a payload orjson cannot encode (the message names the field path
        and the type), or a naive timestamp.
    """
    wire = _wire_of(env.source)
    timestamp = None
    if (
        wire is not None
        and wire.timestamp is not None
        and go_datetime(wire.timestamp) == env.timestamp
    ):
        timestamp = format_go_time(wire.timestamp)
    return encode_fields(
        env.type,
        env.event_key,
        env.run_id,
        env.session_id,
        timestamp or format_timestamp(env.timestamp),
        env.payload,
        env.server_data,
        wire,
    )


def event_timestamp(event: Event) -> str:
    """The timestamp a relay writes for ``event``: the one it was received with, exactly
    (nanoseconds and offset), while ``timestamp`` is still that one; else its ``timestamp``
    as :func:`format_timestamp` writes it.

    :raises ConfigurationError: the event has no timestamp (it was never on a stream), or one
        that is not an aware datetime.
    """
    if type(event) is StreamEvent:
        wire = event._received()
        if (
            wire is not None
            and wire.timestamp is not None
            and go_datetime(wire.timestamp) == event.timestamp
        ):
            return format_go_time(wire.timestamp)
    timestamp = getattr(event, "timestamp", None)
    if not isinstance(timestamp, datetime):
        raise ConfigurationError(
            f"a {event.type!r} event has no timestamp of its own to relay "
            f"(timestamp={timestamp!r}); expected a received event, or one with an aware "
            "datetime as its timestamp"
        )
    return format_timestamp(timestamp)


def relay_envelope(event: StreamEvent) -> bytes:
    """The envelope a relay writes for ``event``: its own timestamp (see
    :func:`event_timestamp`), and, for a decoded event, Go's bytes (see
    :func:`encode_envelope`). A decoded event that was not changed comes back as the envelope
    it was decoded from, when that envelope is as Go writes one.

    :raises ConfigurationError: no timestamp, or a changed field that cannot be encoded.
    """
    return encode_fields(
        event.type,
        event.event_key,
        event.run_id,
        event.session_id,
        event_timestamp(event),
        event.payload,
        event.server_data,
        event._received(),
    )
