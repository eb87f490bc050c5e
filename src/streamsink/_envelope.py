"""The JSON envelope: the wire format shared with Go's goa/loom services (DESIGN §5).

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

from ._events import Event, StreamEvent, decoded_event, raw_json
from ._exceptions import ConfigurationError, DecodeError
from ._gojson import go_text as _go_text  # importable here, as before the split
from ._gojson import key_end as _key_end  # noqa: F401
from ._gojson import last_member
from ._gojson import members as _members
from ._gojson import value_end as _value_end  # noqa: F401
from ._payload_errors import dumps as _dumps
from ._timestamps import (
    format_go_time,
    format_timestamp,
    go_datetime,
    now_timestamp,
    parse_go_time,
    parse_timestamp,
)
from ._wire import FIELDS, Wire, encode_received, folds_to_field, read_wire

__all__ = [
    "Envelope",
    "encode_envelope",
    "decode_envelope",
    "event_timestamp",
    "format_timestamp",
    "now_timestamp",
    "parse_timestamp",
    "relay_envelope",
]

_WHITESPACE = b" \t\n\r"
_MISSING: Any = object()
_CLOSE_OBJECT = 0x7D


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
        # The usual event, built in one go (the same keys in the same order as below).
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
        wire = event.received()
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
        event.received(),
    )


def decode_envelope(data: bytes) -> StreamEvent:
    """Decode envelope bytes into a :class:`StreamEvent` (``entry_id``/``stream_id`` None).

    Decodes what loom-mcp's Go decoder (``json.Unmarshal`` into its envelope struct) decodes,
    and as it does, but for an envelope without a ``type`` (Go's sinks always write one):
    nanosecond timestamps (kept in ``timestamp_ns``), any offset (kept in
    ``timestamp_offset``), ``\\u003c`` escapes, unknown keys (ignored), missing optional keys,
    keys that match a field ignoring case, repeated keys (the last
    counts), ``null`` for a text field (no value), and inside payload and server_data any JSON
    Go's scanner reads: numbers beyond a float's range, integers beyond 64 bits, bytes that are
    not UTF-8 and escapes of lone surrogates in strings, 10000 levels of nesting. Where the
    payload's Python value cannot say exactly what its bytes say, ``payload_exact`` is False.
    A timestamp outside the years 1-9999 in UTC decodes with ``timestamp`` None and
    ``timestamp_ns`` set.

    ``server_data`` is the bytes of its value exactly as they are in ``data`` (escapes, number
    forms and whitespace kept, as Go's ``rawjson.Message`` keeps them), and ``source`` is
    ``data`` itself, so an event relayed on re-emits them unchanged.

    :raises DecodeError: no ``type``, or what Go's decoder refuses: not JSON (as Go's scanner
        reads it), not an object, a text field or timestamp that is not a string (or null), a timestamp
        that is not RFC 3339. Never any other exception type.
    """
    return decode_entry(data, None, None)


def _as_bytes(data: bytes | bytearray | memoryview | str) -> bytes:
    """``data``, which orjson read, as bytes (what the decoder keeps is never a mutable view)."""
    if type(data) is bytes:
        return data
    if isinstance(data, str):
        return data.encode("utf-8", "surrogatepass")
    return bytes(data)


def _last_member(data: bytes, name: str) -> bytes | None:
    """The bytes of the value of the last top-level member keyed ``name`` (once unescaped)."""
    value = None
    for key, start, end in _members(data):
        if _go_text(key) == name:
            value = data[start:end]
    return value


def _server_data_bytes(data: bytes, value: Any) -> bytes:
    """The bytes of the envelope's ``server_data`` value, exactly as they are in ``data``, which
    orjson has read into ``value`` (so it is valid JSON, with a ``server_data`` member).

    A sink writes ``server_data`` last, so its value runs from after the last ``,"server_data":``
    to before the closing brace. A look-alike nested in it, or one that is not a member of the
    envelope at all, makes that slice something other than one JSON value, so a slice that is
    one JSON value is the right one. Checking that costs a comparison with orjson's encoding of
    ``value`` (the cost of the re-encoding this replaces) when the value is written as orjson
    writes it, which is how most writers write it: :func:`_server_data_elsewhere` does the rest.
    """
    end = len(data) - 1
    if data[end] != _CLOSE_OBJECT:  # whitespace after the closing brace
        end = len(data.rstrip(_WHITESPACE)) - 1
    at = data.rfind(b',"server_data":', 0, end)
    if at > 0:
        found = data[at + 15 : end]
        try:
            if found == _orjson_dumps(value):
                return found
        except TypeError:  # deeper than orjson writes
            pass
    return _server_data_elsewhere(data, end)


def _server_data_elsewhere(data: bytes, end: int) -> bytes:
    """:func:`_server_data_bytes` for a value written otherwise than orjson writes it, or
    elsewhere than last in the envelope; ``end`` is where the closing brace is."""
    stop = end
    for _ in range(4):  # nested look-alikes are few; an envelope full of them takes the walk
        at = data.rfind(b'"server_data":', 0, stop)
        if at <= 0:
            break
        # After ',' or '{' the quote opens a key: it cannot end a string (a string is not
        # followed by ',' or '{' and then more text) nor be escaped.
        if data[at - 1] in b",{":
            found = data[at + 14 : end].strip(_WHITESPACE)
            try:
                orjson.loads(found)
            except orjson.JSONDecodeError:
                pass
            else:
                return found
        stop = at
    walked = last_member(data, "server_data")
    if walked is None:  # orjson found the member: the walk does too
        raise DecodeError("envelope field 'server_data' could not be located")
    return walked


def _decode_as_go(data: Any, entry_id: str | None, stream_id: str | None) -> StreamEvent:
    """:func:`decode_entry` by reading the bytes as Go does: for what orjson refuses, and for
    the few documents where orjson's reading differs from Go's (a ``null`` text field or
    timestamp, a key matching a field only ignoring case, a timestamp only Go's parser takes).

    :raises DecodeError: what Go's decoder refuses.
    """
    try:
        data = _as_bytes(data)
    except TypeError as exc:  # not bytes-like at all
        raise DecodeError(f"envelope must be bytes, got {type(data).__name__}: {exc}") from None
    wire = read_wire(data)
    payload = None
    if wire.payload is not None:
        payload = wire.payload_value()[0]
    server_data = None
    if wire.server_data is not None:
        start, end = wire.server_data
        server_data = data[start:end]
    return decoded_event(
        wire.type,
        wire.run_id,
        wire.session_id,
        wire.event_key,
        payload,
        server_data,
        None if wire.timestamp is None else go_datetime(wire.timestamp),
        entry_id,
        stream_id,
        data,
        wire,
    )


def _timestamp(text: str) -> datetime | None:
    """A timestamp as Go reads it, as the datetime of a decoded event: the usual forms by
    :func:`parse_timestamp`, the others by Go's rules (None outside datetime's years).

    :raises DecodeError: Go refuses it.
    """
    try:
        return parse_timestamp(text)
    except DecodeError:
        return go_datetime(parse_go_time(text))


def decode_entry(data: bytes, entry_id: str | None, stream_id: str | None) -> StreamEvent:
    """:func:`decode_envelope` that also stamps the entry id and stream id (the subscriber's path)."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return _decode_as_go(data, entry_id, stream_id)  # what Go reads and orjson refuses
    except TypeError as exc:  # not bytes-like at all
        raise DecodeError(f"envelope must be bytes, got {type(data).__name__}: {exc}") from None
    if type(doc) is not dict:
        raise DecodeError(f"envelope must be a JSON object, got {type(doc).__name__}")
    if type(data) is not bytes:
        data = _as_bytes(data)
    if len(doc) == 6 and "server_data" not in doc:
        # What a sink writes for a usual event: every key but server_data. Subscripts and type
        # checks of the six values; anything unexpected takes the general path below.
        try:
            event_type, ts_text, payload = doc["type"], doc["timestamp"], doc["payload"]
            run_id, session_id, event_key = doc["run_id"], doc["session_id"], doc["event_key"]
        except KeyError:
            pass
        else:
            if (
                type(event_type) is str
                and type(ts_text) is str
                and type(run_id) is str
                and type(session_id) is str
                and type(event_key) is str
            ):
                return decoded_event(
                    event_type,
                    run_id,
                    session_id,
                    event_key,
                    payload,
                    None,
                    _timestamp(ts_text),
                    entry_id,
                    stream_id,
                    data,
                )
    if not FIELDS.issuperset(doc) and folds_to_field(doc.keys() - FIELDS):
        return _decode_as_go(data, entry_id, stream_id)  # "Type" is Go's type too
    event_type = doc.get("type", _MISSING)
    if event_type is _MISSING:
        raise DecodeError("envelope has no 'type'")  # see read_wire: Go's sinks always write one
    run_id = doc.get("run_id", "")
    session_id = doc.get("session_id", "")
    event_key = doc.get("event_key", "")
    ts_text = doc.get("timestamp")
    if not (
        type(event_type) is str
        and type(run_id) is str
        and type(session_id) is str
        and type(event_key) is str
    ) or (ts_text is None and "timestamp" in doc):
        # A null keeps what an earlier key of the same name said; anything else is refused.
        for key in ("type", "run_id", "session_id", "event_key", "timestamp"):
            value = doc.get(key, "")
            if value is not None and type(value) is not str:
                raise DecodeError(
                    f"envelope field {key!r} must be a string, got {type(value).__name__}"
                )
        return _decode_as_go(data, entry_id, stream_id)
    if type(ts_text) is str:
        timestamp = _timestamp(ts_text)
    elif ts_text is None:
        timestamp = None
    else:
        raise DecodeError(
            f"envelope field 'timestamp' must be a string, got {type(ts_text).__name__}"
        )
    server_data = doc.get("server_data")
    if server_data is not None:
        server_data = _server_data_bytes(data, server_data)
    return decoded_event(
        event_type,
        run_id,
        session_id,
        event_key,
        doc.get("payload"),
        server_data,
        timestamp,
        entry_id,
        stream_id,
        data,
    )
