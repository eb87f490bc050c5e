"""A received envelope as Go's encoding/json decodes it, and the bytes a relay of it writes.

loom-mcp decodes an envelope with ``json.Unmarshal`` into a struct of strings, a ``time.Time``,
a ``json.RawMessage`` payload and a ``rawjson.Message`` server_data. :func:`read_wire` does the
same from the bytes (Go's rules of decode.go, cited where they apply); :func:`encode_received`
writes the envelope back as ``json.Marshal`` of that struct does, so that an envelope Go wrote
comes back byte for byte.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from ._exceptions import DecodeError
from ._gojson import _INT_MAX, _INT_MIN, go_text, members, read_value
from ._gowrite import go_compact, go_quote, same_value
from ._payload_errors import dumps, refuse
from ._timestamps import GoTime, parse_go_time

__all__ = ["FIELDS", "Wire", "encode_received", "folds_to_field", "read_wire"]

FIELDS = frozenset(
    ("type", "event_key", "run_id", "session_id", "timestamp", "payload", "server_data")
)
_TEXT_FIELDS = ("type", "event_key", "run_id", "session_id")
# Go matches a key to a field ignoring case (decode.go: an exact match, else foldName's), where
# U+017F (long s) folds to "s" and U+212A (Kelvin sign) to "k"; no other character folds to the
# ASCII of our field names.
_FOLDS = {0x17F: "s", 0x212A: "k"}
_STRINGS = re.compile(rb'"(?:[^"\\]++|\\.)*+"')
_LONG_INTEGER = re.compile(rb"(?<![0-9.eE+-])-?[0-9]{20,}(?![0-9.eE])")


def _field(key: str) -> str | None:
    """The envelope field Go decodes a member keyed ``key`` into, or None (ignored)."""
    if key in FIELDS:
        return key
    folded = key.translate(_FOLDS).lower()
    return folded if folded in FIELDS else None


def folds_to_field(keys: Any) -> bool:
    """Whether any of ``keys`` (none of them a field name) names a field to Go."""
    return any(_field(key) is not None for key in keys)


@attrs.frozen
class Wire:
    """An envelope as Go decodes it. ``payload`` and ``server_data`` are the spans of their
    values in ``data`` (``payload`` includes a ``null``, which Go keeps as ``RawMessage("null")``;
    ``server_data`` does not, as ``rawjson.Message`` reads ``null`` as nil). ``payload_exact``:
    whether the Python value of the payload is exactly what its bytes say."""

    data: bytes
    type: str
    event_key: str
    run_id: str
    session_id: str
    timestamp: GoTime | None
    payload: tuple[int, int] | None
    server_data: tuple[int, int] | None
    payload_exact: bool
    #: spans of the type, event_key, run_id and session_id strings in ``data`` (None: absent)
    text_spans: tuple[tuple[int, int] | None, ...] = (None, None, None, None)

    def payload_value(self) -> tuple[Any, bool]:
        """(value, exact) of the payload, read afresh (None when absent or null)."""
        if self.payload is None:
            return None, True
        start, end = self.payload
        value, exact = read_value(self.data, start, end)
        if exact and _has_long_integer(self.data[start:end]):
            exact = False  # orjson read it as the nearest float
        return value, exact


def _has_long_integer(raw: bytes) -> bool:
    """Whether ``raw`` holds an integer beyond 64 bits (outside its strings) that no float is
    (``100000000000000000000``, as Go writes the float64 1e20, is one)."""
    if b"0000000000" not in raw.translate(_DIGITS_TO_ZERO):
        return False  # no run of ten digits at all: the usual case, found at C speed
    for found in _LONG_INTEGER.finditer(_STRINGS.sub(b'""', raw)):
        value = int(found.group())
        if not _INT_MIN <= value <= _INT_MAX and float(value) != value:
            return True  # read as a float that is not this integer
    return False


_DIGITS_TO_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)


def read_wire(data: bytes) -> Wire:
    """Decode ``data`` as loom-mcp's decoder does (``json.Unmarshal`` into its envelope struct).

    Each member is matched to a field as Go matches it (exactly, else ignoring case) and, if
    keys repeat, the last one counts; ``null`` leaves a text field or the timestamp as it was
    (decode.go: "ignore null for primitives/string"); unknown keys are ignored; a top-level
    ``null`` would be an empty envelope.

    :raises DecodeError: what makes Go's decoder fail: JSON its scanner refuses, a top level
        that is not an object, a text field or timestamp that is not a string (or null), or a
        timestamp ``time.Time.UnmarshalJSON`` refuses; and, unlike Go, no ``type`` member.
    """
    text = dict.fromkeys(_TEXT_FIELDS, "")
    spans: dict[str, tuple[int, int]] = {}
    timestamp = payload = server_data = None
    typed = False
    for key_token, start, end in members(data):
        name = _field(go_text(key_token))
        if name is None:
            continue
        typed = typed or name == "type"
        first = data[start]
        if name == "payload":
            payload = (start, end)
        elif name == "server_data":
            server_data = None if data[start:end] == b"null" else (start, end)
        elif first == 0x6E:  # null
            continue
        elif first != 0x22:
            kind = {0x7B: "dict", 0x5B: "list", 0x74: "bool", 0x66: "bool"}.get(first, "number")
            raise DecodeError(f"envelope field {name!r} must be a string, got {kind}")
        elif name == "timestamp":
            timestamp = parse_go_time(go_text(data[start:end]))
        else:
            text[name] = go_text(data[start:end])
            spans[name] = (start, end)
    if not typed:
        # The one rule Go's decoder does not have: Go's sinks always write a type, and without
        # one a dead-letter record (or any JSON object) would pass for an event.
        raise DecodeError("envelope has no 'type'")
    wire = Wire(
        data,
        text["type"],
        text["event_key"],
        text["run_id"],
        text["session_id"],
        timestamp,
        payload,
        server_data,
        True,
        tuple(spans.get(name) for name in _TEXT_FIELDS),
    )
    exact = wire.payload_value()[1]
    return wire if exact else attrs.evolve(wire, payload_exact=False)


def encode_received(
    wire: Wire,
    type: str,
    event_key: str,
    run_id: str,
    session_id: str,
    timestamp: str,
    payload: Any,
    server_data: bytes | None,
) -> bytes:
    """The envelope of these fields, written as Go's ``json.Marshal`` writes loom's envelope,
    for an event decoded from ``wire``: text fields as Go writes strings, the payload and
    server_data, when they are still the ones received, as their bytes (compacted and
    HTML-escaped as Go copies a ``json.RawMessage``); a payload that was changed is written by
    orjson, a server_data that was changed as it is.

    :raises ConfigurationError: a text field with a lone surrogate, or a changed payload
        orjson cannot encode.
    """
    data = wire.data
    try:
        parts = [b'{"type":', _quote(wire, 0, type)]
        if event_key:
            parts += (b',"event_key":', _quote(wire, 1, event_key))
        parts += (b',"run_id":', _quote(wire, 2, run_id))
        if session_id:
            parts += (b',"session_id":', _quote(wire, 3, session_id))
    except TypeError as exc:
        refuse(
            {"type": type, "event_key": event_key, "run_id": run_id, "session_id": session_id}, exc
        )
    parts += (b',"timestamp":"', timestamp.encode(), b'"')
    if wire.payload is not None and same_value(payload, wire.payload_value()[0]):
        start, end = wire.payload
        parts += (b',"payload":', go_compact(data[start:end]))
    elif payload is not None:
        parts += (b',"payload":', dumps({"payload": payload})[11:-1])
    if server_data:
        if wire.server_data is not None:
            start, end = wire.server_data
            if server_data == data[start:end]:
                server_data = go_compact(server_data)
        parts += (b',"server_data":', server_data)
    parts.append(b"}")
    return b"".join(parts)


_REPLACEMENT = "\ufffd"
_REPLACEMENT_ESCAPE, _REPLACEMENT_UTF8 = b"\\ufffd", _REPLACEMENT.encode()


def _quote(wire: Wire, index: int, value: str) -> bytes:
    """A text field as Go writes the string, or as it was received where Go wrote it from
    bytes that were not UTF-8: Go's Marshal writes each such byte as the escape ``\\ufffd``,
    its Unmarshal reads that as U+FFFD, which Marshal then writes as is, so only the received
    token gives back what the Go producer wrote (a Go relay does not).

    :raises TypeError: ``value`` has a lone surrogate.
    """
    quoted = go_quote(value)
    span = wire.text_spans[index]
    if span is not None and _REPLACEMENT in value:
        token = wire.data[span[0] : span[1]]
        if token != quoted and token.replace(_REPLACEMENT_ESCAPE, _REPLACEMENT_UTF8) == quoted:
            return token
    return quoted
