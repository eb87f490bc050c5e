"""Decoding envelopes: orjson's fast path for what sinks write, Go's reading for the rest.

Nearly every entry read is an envelope a sink wrote: orjson reads it and the event is built
from its fields. What orjson refuses, or reads otherwise than Go's encoding/json (a ``null``
text field, a key matching a field only ignoring case, a timestamp only Go's parser takes), is
read as loom-mcp's Go decoder reads it (``_wire.read_wire``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from orjson import dumps as _orjson_dumps

from ._events import StreamEvent, UnfrozenEvent, decoded_event
from ._exceptions import DecodeError
from ._gojson import last_member
from ._timestamps import go_datetime, parse_go_time, parse_timestamp
from ._wire import FIELDS, folds_to_field, read_wire

__all__ = ["decode_entry", "decode_envelope"]

_WHITESPACE = b" \t\n\r"
_CLOSE_OBJECT = 0x7D
_MISSING: Any = object()
_new = object.__new__
_fromisoformat = datetime.fromisoformat


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
                timestamp: datetime | None
                if (
                    len(ts_text) == 27
                    and ts_text[26] == "Z"
                    and ts_text[19] == "."
                    and ts_text[4:17:3] == "--T::"
                ):
                    # What a sink stamps nine times in ten (microseconds, UTC): parse_timestamp's
                    # own fast path, inline (~260 -> ~150 ns per entry); any doubt goes there.
                    try:
                        timestamp = _fromisoformat(ts_text)
                    except ValueError:
                        timestamp = _timestamp(ts_text)
                else:
                    timestamp = _timestamp(ts_text)  # raises if Go refuses it
                # decoded_event's work (see UnfrozenEvent), inline: this is the path of nearly
                # every entry read, and the call alone costs as much as keeping the source does.
                event: Any = _new(UnfrozenEvent)
                event.type = event_type
                event.run_id = run_id
                event.session_id = session_id
                event.event_key = event_key
                event.payload = payload
                event.server_data = None
                event.timestamp = timestamp
                event.entry_id = entry_id
                event.stream_id = stream_id
                event.gap = None
                event.topic = None
                event._source = data if type(data) is bytes else _as_bytes(data)
                event.__class__ = StreamEvent
                return event  # type: ignore[no-any-return]
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
    if type(data) is not bytes:
        data = _as_bytes(data)
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
