"""The JSON envelope: the wire format shared with Go's goa/loom services (DESIGN §5).

Keys in this order, ``?`` omitted when empty or None::

    type, event_key?, run_id, session_id?, timestamp, payload?, server_data?

``timestamp`` is RFC 3339 UTC with ``Z`` and trailing-zero-trimmed fractional seconds (Go's
RFC3339Nano); ``server_data`` is raw JSON embedded as is.
"""

from __future__ import annotations

import codecs
import functools
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from time import time_ns as _time_ns
from typing import Any, NoReturn

import attrs
import orjson
from orjson import dumps as _orjson_dumps

from ._events import StreamEvent, decoded_event, raw_json
from ._exceptions import ConfigurationError, DecodeError
from ._streams import lone_surrogate, refuse_lone_surrogates, shown

__all__ = [
    "Envelope",
    "encode_envelope",
    "decode_envelope",
    "format_timestamp",
    "now_timestamp",
    "parse_timestamp",
]


@attrs.frozen(kw_only=True)
class Envelope:
    """One published event as it travels: what :func:`encode_envelope` writes."""

    type: str
    event_key: str = ""
    run_id: str = ""
    session_id: str = ""
    timestamp: datetime
    payload: Any = None
    server_data: bytes | None = attrs.field(default=None, converter=raw_json)


def format_timestamp(ts: datetime) -> str:
    """RFC 3339 UTC with ``Z`` and no trailing zeros in the fraction, as Go's RFC3339Nano.

    :raises ConfigurationError: a naive datetime (its zone would be a guess).
    """
    tz = ts.tzinfo
    if tz is None:
        raise ConfigurationError(f"timestamp must be timezone-aware, got naive {ts!r}")
    if tz is not UTC:
        offset = ts.utcoffset()
        if offset:
            ts = ts.astimezone(UTC)
        elif offset is None:  # a tzinfo without an offset: the wall time, as is
            ts = ts.replace(tzinfo=UTC)
    text = ts.isoformat()[:-6]  # the offset is zero now: drop its "+00:00"
    if ts.microsecond:
        text = text.rstrip("0")
    return text + "Z"


# (second, "YYYY-MM-DDTHH:MM:SS" of that second), replaced as one tuple so threads never see a
# prefix paired with the wrong second.
_second_prefix: tuple[int, str] = (-1, "")


def now_timestamp() -> str:
    """The current UTC time as :func:`format_timestamp` writes it (microsecond precision).

    A sink stamps every event it sends: formatting only the fraction, with the date and time of
    the current second cached, costs a third of ``format_timestamp(datetime.now(UTC))``
    (``python -m benchmarks.micro``).
    """
    global _second_prefix
    second, micros = divmod(_time_ns() // 1000, 1_000_000)
    cached_second, prefix = _second_prefix
    if second != cached_second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second_prefix = (second, prefix)
    if micros % 10:  # nine times in ten: no trailing zero to trim
        return f"{prefix}.{micros:06d}Z"
    if micros:
        return f"{prefix}.{micros:06d}".rstrip("0") + "Z"
    return prefix + "Z"


# RFC 3339 as Go's time.RFC3339 parser accepts it; fromisoformat alone also takes forms Go refuses
# (dates without time, spaces, basic format), and what we accept Go subscribers must accept too.
# ASCII digits only: Go reads no others.
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)", re.ASCII)


def parse_timestamp(text: str) -> datetime:
    """Parse RFC 3339 (nanoseconds truncated to microseconds, offsets converted) into UTC.

    :raises DecodeError: anything that is not RFC 3339, or a time outside years 1 to 9999 once
        converted to UTC (``9999-12-31T23:59:59-01:00`` is valid RFC 3339 that ``datetime``
        cannot hold in UTC).
    """
    size = len(text)
    if (
        (
            22 <= size <= 27
            and text[4:17:3] == "--T::"  # the separators at 4, 7, 10, 13 and 16
            and text[19] == "."
            and text[-1] == "Z"
        )
        or (size == 20 and text[4:20:3] == "--T::Z")
    ):
        # What we write (UTC, at most microseconds): with its shape checked above, fromisoformat
        # checks the digits, and its tzinfo is UTC itself. This skips the regex on the hot path.
        try:
            return datetime.fromisoformat(text)
        except ValueError as exc:
            raise DecodeError(f"timestamp {shown(text)} is not RFC 3339: {exc}") from None
    if not _RFC3339.fullmatch(text):
        raise DecodeError(f"timestamp {shown(text)} is not RFC 3339")
    given = text
    if "." in text:
        # datetime keeps microseconds; Go sends up to nanoseconds.
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    try:
        ts = datetime.fromisoformat(text)
    except ValueError as exc:
        raise DecodeError(f"timestamp {given!r} is not RFC 3339: {exc}") from None
    try:
        return ts.astimezone(UTC)
    except OverflowError:
        # Only an offset can take a valid date out of range: year 9999 behind UTC, year 1 ahead.
        raise DecodeError(
            f"timestamp {given!r} is out of range: in UTC it falls outside years 1 to 9999"
        ) from None


def _dumps(doc: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(doc)
    except TypeError as exc:
        refused = exc
    _refuse(doc, refused)  # outside the handler: the message says it all, unchained


def _refuse(doc: dict[str, Any], exc: TypeError) -> NoReturn:
    """Raise the error for an envelope orjson refused: which field, where in its payload, why.

    :raises ConfigurationError: always.
    """
    for key in ("type", "event_key", "run_id", "session_id"):
        value = doc.get(key)
        if isinstance(value, str):
            refuse_lone_surrogates(f"event field {key}", value)
    problem = _payload_problem(doc.get("payload"))
    raise ConfigurationError(f"event payload cannot be encoded as JSON{problem or f': {exc}'}")


@attrs.frozen
class _Key:
    """A dict key orjson refuses, met while walking a payload."""

    key: object


def _children(container: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(path, value) of a container's items, keys orjson refuses included as :class:`_Key`."""
    if isinstance(container, dict):
        for key, item in dict.items(container):
            if type(key) is not str or lone_surrogate(key) is not None:
                yield f"{path}[{shown(key)}] (key)", _Key(key)
                continue
            shown_key = f".{key}" if key.isprintable() and len(key) <= 40 else f"[{shown(key)}]"
            yield path + shown_key, item
    else:
        for index, item in enumerate(container):
            yield f"{path}[{index}]", item


def _payload_problem(payload: Any) -> str | None:
    """What makes ``payload`` unencodable, as the end of an error message, or None if it is not
    found (the payload is then refused with orjson's own words).

    Depth-first in document order, with a stack of its own: a payload may be nested far deeper
    than the interpreter's recursion limit, or contain itself.
    """
    limit = _payload_depth_limit()
    opened: dict[int, str] = {}  # id -> path of each container on the current path
    stack: list[tuple[int, Iterator[tuple[str, Any]]]] = [(0, iter((("payload", payload),)))]
    while stack:
        owner, items = stack[-1]
        step = next(items, None)
        if step is None:
            stack.pop()
            opened.pop(owner, None)
            continue
        path, value = step
        if isinstance(value, dict | list) or type(value) is tuple:  # what orjson walks into
            again = opened.get(id(value))
            if again is not None:
                return f": reference cycle at {_cut(path)} (it is {_cut(again)} again)"
            if len(stack) > limit:
                return f": nesting deeper than {limit} levels at {_cut(path)}"
            opened[id(value)] = path
            stack.append((id(value), _children(value, path)))
            continue
        if type(value) is _Key:
            key = value.key
            reason = "keys must be strings" if type(key) is not str else "it has a lone surrogate"
            return f" at {_cut(path)} (a {type(key).__name__}): {reason}"
        try:
            orjson.dumps(value)
        except TypeError as exc:
            return f" at {_cut(path)} (a {type(value).__name__}): {exc}"
    return None


def _cut(path: str) -> str:
    """A payload path short enough for a message: its start and its end."""
    return path if len(path) <= 120 else f"{path[:70]}...{path[-40:]}"


@functools.cache
def _payload_depth_limit() -> int:
    """Levels of nesting orjson writes in a payload (its own limit, less the envelope's level),
    found by trying; asked only once a payload was refused."""

    def writes(depth: int) -> bool:
        value: Any = None
        for _ in range(depth):
            value = [value]
        try:
            orjson.dumps(value)
        except TypeError:
            return False
        return True

    # Bisection, keeping: orjson writes `low` levels and refuses `high`. Should some orjson
    # write 4096, deeper than that is called too deep here.
    low, high = 1, 4096
    if writes(high):
        return high - 1
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if writes(middle) else (low, middle)
    return low - 1


def encode_fields(
    type: str,
    event_key: str,
    run_id: str,
    session_id: str,
    timestamp: str,
    payload: Any,
    server_data: bytes | None,
) -> bytes:
    """Encode envelope fields (timestamp already formatted); the sink's fast path uses it directly."""
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


def encode_envelope(env: Envelope) -> bytes:
    """Encode an envelope as compact UTF-8 JSON in the wire key order.

    :raises ConfigurationError: a payload orjson cannot encode (the message names the field path
        and the type), or a naive timestamp.
    """
    return encode_fields(
        env.type,
        env.event_key,
        env.run_id,
        env.session_id,
        format_timestamp(env.timestamp),
        env.payload,
        env.server_data,
    )


def decode_envelope(data: bytes) -> StreamEvent:
    """Decode envelope bytes into a :class:`StreamEvent` (``entry_id``/``stream_id`` None).

    Accepts what Go produces: nanosecond timestamps, offsets, ``\\u003c`` escapes, unknown keys
    (ignored) and missing optional keys.

    ``server_data`` is the bytes of its value exactly as they are in ``data`` (escapes, number
    forms and whitespace kept, as Go's ``rawjson.Message`` keeps them), so an event relayed on
    re-emits them unchanged.

    :raises DecodeError: not UTF-8 JSON, not an object, a field of the wrong type, or a timestamp
        that is not RFC 3339 or falls outside years 1-9999 in UTC. Never any other exception
        type.
    """
    return decode_entry(data, None, None)


def _text_field(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DecodeError(f"envelope field {key!r} must be a string, got {type(value).__name__}")
    return value


# -- reading JSON as Go's encoding/json reads it -------------------------------------------------
#
# orjson parses an envelope into Python values; it cannot say where a value's bytes are, and it
# refuses some JSON that Go reads. This scanner walks the bytes instead. It accepts exactly the
# grammar of Go's encoding/json scanner (RFC 8259, any byte but '"', '\\' and controls inside
# strings, so bytes that are not UTF-8 too, and at most 10000 levels of nesting) and returns where
# each member of the top-level object is. It runs only when orjson cannot answer: to find the span
# of a value an envelope does not have in the usual place, and to read what orjson refuses.

_WHITESPACE = b" \t\n\r"
_SKIP = re.compile(rb"[ \t\n\r]*+")
# Possessive quantifiers: a string or number that never ends fails in linear time.
_STRING = re.compile(rb'"(?:[^"\\\x00-\x1f]++|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*+"')
_NUMBER = re.compile(rb"-?+(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?+(?:[eE][+-]?+[0-9]++)?+")
_MAX_DEPTH = 10000  # Go's maxNestingDepth (encoding/json/scanner.go)
_OPEN_OBJECT, _CLOSE_OBJECT, _OPEN_ARRAY, _CLOSE_ARRAY = b"{}[]"
_QUOTE, _COMMA, _COLON = 0x22, 0x2C, b":"


def _invalid(data: bytes, pos: int, what: str) -> NoReturn:
    """:raises DecodeError: always, saying what was wrong where."""
    found = "the end" if pos >= len(data) else shown(data[pos : pos + 1])
    raise DecodeError(f"envelope is not valid JSON: {what} at byte {pos}, found {found}")


def _skip(data: bytes, pos: int) -> int:
    """The position of the first byte at or after ``pos`` that is not JSON whitespace."""
    return _SKIP.match(data, pos).end()  # type: ignore[union-attr]  # `*` always matches


def _key_end(data: bytes, pos: int) -> tuple[int, int]:
    """(end of the key, start of the value) of the object member whose key starts at ``pos``.

    :raises DecodeError: no key string, or no colon after it.
    """
    found = _STRING.match(data, pos)
    if found is None:
        _invalid(data, pos, "expected a string as an object key")
    key_end = found.end()
    pos = _skip(data, key_end)
    if data[pos : pos + 1] != _COLON:
        _invalid(data, pos, "expected ':' after an object key")
    return key_end, _skip(data, pos + 1)


def _value_end(data: bytes, pos: int, depth: int) -> int:
    """Where the JSON value that starts at ``pos``, inside ``depth`` containers, ends.

    Iterative, with a stack of its own: Go reads 10000 levels, far past Python's recursion limit.

    :raises DecodeError: not a JSON value as Go's scanner reads one.
    """
    closers = bytearray()  # what closes each container open inside the value
    size = len(data)
    while True:
        # A value starts at pos.
        byte = data[pos] if pos < size else -1
        if byte == _QUOTE:
            found = _STRING.match(data, pos)
            if found is None:
                _invalid(data, pos, "expected a string (terminated, with valid escapes)")
            pos = found.end()
        elif byte in (_OPEN_OBJECT, _OPEN_ARRAY):
            if depth + len(closers) >= _MAX_DEPTH:
                _invalid(data, pos, f"nesting deeper than {_MAX_DEPTH} levels")
            pos = _skip(data, pos + 1)
            closer = _CLOSE_OBJECT if byte == _OPEN_OBJECT else _CLOSE_ARRAY
            if pos < size and data[pos] == closer:
                pos += 1  # empty: the value is complete
            else:
                closers.append(closer)
                if closer == _CLOSE_OBJECT:
                    pos = _key_end(data, pos)[1]
                continue
        elif byte == 0x74 and data.startswith(b"true", pos):
            pos += 4
        elif byte == 0x66 and data.startswith(b"false", pos):
            pos += 5
        elif byte == 0x6E and data.startswith(b"null", pos):
            pos += 4
        else:
            found = _NUMBER.match(data, pos)
            if found is None:
                _invalid(data, pos, "expected a JSON value")
            pos = found.end()
        # A value ended: close what it completes, or go on to the next item.
        while closers:
            pos = _skip(data, pos)
            byte = data[pos] if pos < size else -1
            if byte == _COMMA:
                pos = _skip(data, pos + 1)
                if closers[-1] == _CLOSE_OBJECT:
                    pos = _key_end(data, pos)[1]
                break
            if byte != closers[-1]:
                _invalid(data, pos, f"expected ',' or {chr(closers[-1])!r}")
            closers.pop()
            pos += 1
        else:
            return pos


_KINDS = {b'"': "str", b"[": "list", b"t": "bool", b"f": "bool", b"n": "NoneType"}


def _members(data: bytes) -> list[tuple[bytes, int, int]]:
    """The members of the JSON object ``data`` in document order, duplicates included, as
    (key token as written, value start, value end).

    :raises DecodeError: not JSON as Go's encoding/json reads it, or JSON that is not an object.
    """
    size = len(data)
    pos = _skip(data, 0)
    if data[pos : pos + 1] != b"{":
        if pos >= size:
            _invalid(data, pos, "expected a JSON value")
        end = _skip(data, _value_end(data, pos, 0))
        if end != size:
            _invalid(data, end, "unexpected data after the top-level value")
        kind = _KINDS.get(data[pos : pos + 1], "number")
        raise DecodeError(f"envelope must be a JSON object, got {kind}")
    members: list[tuple[bytes, int, int]] = []
    pos = _skip(data, pos + 1)
    if data[pos : pos + 1] == b"}":
        pos += 1
    else:
        while True:
            key_end, start = _key_end(data, pos)
            end = _value_end(data, start, 1)
            members.append((data[pos:key_end], start, end))
            pos = _skip(data, end)
            following = data[pos : pos + 1]
            if following == b"}":
                pos += 1
                break
            if following != b",":
                _invalid(data, pos, "expected ',' or '}' after an object member")
            pos = _skip(data, pos + 1)
    pos = _skip(data, pos)
    if pos != size:
        _invalid(data, pos, "unexpected data after the envelope")
    return members


def _go_replace(error: UnicodeError) -> tuple[str, int]:
    """U+FFFD for each byte of a sequence that is not UTF-8: what Go's decoder makes of it."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return "\ufffd" * (error.end - error.start), error.end


codecs.register_error("streamsink.go-text", _go_replace)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _go_text(token: bytes) -> str:
    """The text of a JSON string token (valid by :data:`_STRING`) as Go's encoding/json decodes
    it into a string: each byte that is not part of valid UTF-8, and each ``\\u`` escape of a
    lone surrogate, becomes U+FFFD (the first a surrogate pair cannot be made of, as Go pairs
    them: a high surrogate with the escape right after it)."""
    try:
        text: str = orjson.loads(token)
    except orjson.JSONDecodeError:
        # The json module pairs surrogates as Go does and keeps the lone ones, which are then
        # replaced; the bytes that are not UTF-8 are replaced before it reads the text.
        text = json.loads(token.decode("utf-8", "streamsink.go-text"))
        return _LONE_SURROGATE.sub("\ufffd", text)
    return text


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
    walked = _last_member(data, "server_data")
    if walked is None:  # orjson found the member: the walk does too
        raise DecodeError("envelope field 'server_data' could not be located")
    return walked


def decode_entry(data: bytes, entry_id: str | None, stream_id: str | None) -> StreamEvent:
    """:func:`decode_envelope` that also stamps the entry id and stream id (the subscriber's path)."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"envelope is not valid UTF-8 JSON: {exc}") from None
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
                return decoded_event(
                    event_type,
                    run_id,
                    session_id,
                    event_key,
                    payload,
                    None,
                    parse_timestamp(ts_text),
                    entry_id,
                    stream_id,
                )
    event_type = doc.get("type")
    if type(event_type) is not str:
        raise DecodeError(
            "envelope has no 'type'"
            if event_type is None
            else f"envelope field 'type' must be a string, got {type(event_type).__name__}"
        )
    ts_text = doc.get("timestamp")
    if type(ts_text) is str:
        timestamp = parse_timestamp(ts_text)
    elif ts_text is None:
        timestamp = None
    else:
        raise DecodeError(
            f"envelope field 'timestamp' must be a string, got {type(ts_text).__name__}"
        )
    server_data = doc.get("server_data")
    if server_data is not None:
        if type(data) is not bytes:
            data = _as_bytes(data)
        server_data = _server_data_bytes(data, server_data)
    run_id = doc.get("run_id", "")
    session_id = doc.get("session_id", "")
    event_key = doc.get("event_key", "")
    return decoded_event(
        event_type,
        run_id if type(run_id) is str else _text_field(doc, "run_id"),
        session_id if type(session_id) is str else _text_field(doc, "session_id"),
        event_key if type(event_key) is str else _text_field(doc, "event_key"),
        doc.get("payload"),
        server_data,
        timestamp,
        entry_id,
        stream_id,
    )
