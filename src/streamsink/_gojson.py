"""Reading JSON as Go's encoding/json reads it.

orjson parses an envelope into Python values; it cannot say where a value's bytes are, and it
refuses some JSON that Go reads (numbers beyond float range, bytes that are not UTF-8 inside
strings, ``\\u`` escapes of lone surrogates, more than 1024 levels of nesting). This scanner walks
the bytes instead. It accepts exactly the grammar of Go's encoding/json scanner (scanner.go: RFC
8259, any byte but ``"``, ``\\`` and controls inside strings, at most 10000 levels of nesting),
finds where each member of the top-level object is, and reads values orjson refuses. It runs only
when orjson cannot answer.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import Any, NoReturn

import orjson

from ._exceptions import DecodeError
from ._streams import shown

__all__ = [
    "MAX_DEPTH",
    "STRING",
    "go_text",
    "invalid",
    "key_end",
    "last_member",
    "members",
    "read_value",
    "skip",
    "value_end",
]

_SKIP = re.compile(rb"[ \t\n\r]*+")
# Possessive quantifiers: a string or number that never ends fails in linear time.
STRING = re.compile(rb'"(?:[^"\\\x00-\x1f]++|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*+"')
_NUMBER = re.compile(rb"-?+(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?+(?:[eE][+-]?+[0-9]++)?+")
MAX_DEPTH = 10000  # Go's maxNestingDepth (encoding/json/scanner.go)
_OPEN_OBJECT, _CLOSE_OBJECT, _OPEN_ARRAY, _CLOSE_ARRAY = b"{}[]"
_QUOTE, _COMMA, _COLON = 0x22, 0x2C, b":"


def invalid(data: bytes, pos: int, what: str) -> NoReturn:
    """:raises DecodeError: always, saying what was wrong where."""
    found = "the end" if pos >= len(data) else shown(data[pos : pos + 1])
    raise DecodeError(f"envelope is not valid JSON: {what} at byte {pos}, found {found}")


def skip(data: bytes, pos: int) -> int:
    """The position of the first byte at or after ``pos`` that is not JSON whitespace."""
    return _SKIP.match(data, pos).end()  # type: ignore[union-attr]  # `*` always matches


def key_end(data: bytes, pos: int) -> tuple[int, int]:
    """(end of the key, start of the value) of the object member whose key starts at ``pos``.

    :raises DecodeError: no key string, or no colon after it.
    """
    found = STRING.match(data, pos)
    if found is None:
        invalid(data, pos, "expected a string as an object key")
    end = found.end()
    pos = skip(data, end)
    if data[pos : pos + 1] != _COLON:
        invalid(data, pos, "expected ':' after an object key")
    return end, skip(data, pos + 1)


def _scalar_end(data: bytes, pos: int, byte: int) -> int:
    """Where the string, literal or number starting at ``pos`` (first byte ``byte``) ends.

    :raises DecodeError: none of those starts there.
    """
    if byte == _QUOTE:
        found = STRING.match(data, pos)
        if found is None:
            invalid(data, pos, "expected a string (terminated, with valid escapes)")
        return found.end()
    if byte == 0x74 and data.startswith(b"true", pos):
        return pos + 4
    if byte == 0x66 and data.startswith(b"false", pos):
        return pos + 5
    if byte == 0x6E and data.startswith(b"null", pos):
        return pos + 4
    found = _NUMBER.match(data, pos)
    if found is None:
        invalid(data, pos, "expected a JSON value")
    return found.end()


def value_end(data: bytes, pos: int, depth: int) -> int:
    """Where the JSON value that starts at ``pos``, inside ``depth`` containers, ends.

    Iterative, with a stack of its own: Go reads 10000 levels, far past Python's recursion limit.

    :raises DecodeError: not a JSON value as Go's scanner reads one.
    """
    closers = bytearray()  # what closes each container open inside the value
    size = len(data)
    while True:
        byte = data[pos] if pos < size else -1
        if byte in (_OPEN_OBJECT, _OPEN_ARRAY):
            if depth + len(closers) >= MAX_DEPTH:
                invalid(data, pos, f"nesting deeper than {MAX_DEPTH} levels")
            pos = skip(data, pos + 1)
            closer = _CLOSE_OBJECT if byte == _OPEN_OBJECT else _CLOSE_ARRAY
            if pos < size and data[pos] == closer:
                pos += 1  # empty: the value is complete
            else:
                closers.append(closer)
                if closer == _CLOSE_OBJECT:
                    pos = key_end(data, pos)[1]
                continue
        else:
            pos = _scalar_end(data, pos, byte)
        # A value ended: close what it completes, or go on to the next item.
        while closers:
            pos = skip(data, pos)
            byte = data[pos] if pos < size else -1
            if byte == _COMMA:
                pos = skip(data, pos + 1)
                if closers[-1] == _CLOSE_OBJECT:
                    pos = key_end(data, pos)[1]
                break
            if byte != closers[-1]:
                invalid(data, pos, f"expected ',' or {chr(closers[-1])!r}")
            closers.pop()
            pos += 1
        else:
            return pos


_KINDS = {b'"': "str", b"[": "list", b"t": "bool", b"f": "bool"}


def members(data: bytes) -> list[tuple[bytes, int, int]]:
    """The members of the JSON object ``data`` in document order, duplicates included, as
    (key token as written, value start, value end). A top-level ``null`` has none: Go decodes
    it into a struct as it decodes ``{}``.

    :raises DecodeError: not JSON as Go's encoding/json reads it, or JSON that is neither an
        object nor null.
    """
    size = len(data)
    pos = skip(data, 0)
    if data[pos : pos + 1] != b"{":
        if pos >= size:
            invalid(data, pos, "expected a JSON value")
        end = skip(data, value_end(data, pos, 0))
        if end != size:
            invalid(data, end, "unexpected data after the top-level value")
        if data[pos : pos + 1] == b"n":
            return []
        kind = _KINDS.get(data[pos : pos + 1], "number")
        raise DecodeError(f"envelope must be a JSON object, got {kind}")
    found: list[tuple[bytes, int, int]] = []
    pos = skip(data, pos + 1)
    if data[pos : pos + 1] == b"}":
        pos += 1
    else:
        while True:
            key_stop, start = key_end(data, pos)
            end = value_end(data, start, 1)
            found.append((data[pos:key_stop], start, end))
            pos = skip(data, end)
            following = data[pos : pos + 1]
            if following == b"}":
                pos += 1
                break
            if following != b",":
                invalid(data, pos, "expected ',' or '}' after an object member")
            pos = skip(data, pos + 1)
    pos = skip(data, pos)
    if pos != size:
        invalid(data, pos, "unexpected data after the envelope")
    return found


def _go_replace(error: UnicodeError) -> tuple[str, int]:
    """U+FFFD for each byte of a sequence that is not UTF-8: what Go's decoder makes of it."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return "\ufffd" * (error.end - error.start), error.end


codecs.register_error("streamsink.go-text", _go_replace)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _string(token: bytes) -> tuple[str, bool]:
    """(text, whether it is exactly what the token says) of a JSON string token (valid by
    :data:`STRING`), as Go's encoding/json decodes it into a string (decode.go, unquote): each
    byte that is not part of valid UTF-8, and each ``\\u`` escape of a lone surrogate, becomes
    U+FFFD (the first a surrogate pair cannot be made of, as Go pairs them: a high surrogate
    with the escape right after it)."""
    try:
        return orjson.loads(token), True
    except orjson.JSONDecodeError:
        # The json module pairs surrogates as Go does and keeps the lone ones, which are then
        # replaced; the bytes that are not UTF-8 are replaced before it reads the text.
        text = json.loads(token.decode("utf-8", "streamsink.go-text"))
        return _LONE_SURROGATE.sub("\ufffd", text), False


def go_text(token: bytes) -> str:
    """The text of a JSON string token as Go's encoding/json decodes it (see :func:`_string`)."""
    return _string(token)[0]


def last_member(data: bytes, name: str) -> bytes | None:
    """The bytes of the value of the last top-level member keyed ``name`` (once unescaped)."""
    value = None
    for key, start, end in members(data):
        if go_text(key) == name:
            value = data[start:end]
    return value


# The integers orjson reads as integers; it reads longer ones as the nearest float, and so does
# this reader, so a payload reads the same whichever reader read it.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
_MAX_INT_DIGITS = 4300  # int() of longer text raises (sys.get_int_max_str_digits's default)


def _number(token: bytes) -> tuple[Any, bool]:
    """(value, exact) of a JSON number token as orjson reads it, and, beyond a float's range,
    as a ``decimal.Decimal`` of its text (not infinity); an integer beyond 64 bits is read as
    the nearest float, exact only if that float is the integer."""
    if b"." not in token and b"e" not in token and b"E" not in token:
        if len(token) <= 20:
            value = int(token)
            if _INT_MIN <= value <= _INT_MAX:
                return value, True
        if len(token) <= _MAX_INT_DIGITS:
            integer = int(token)
            try:
                as_float = float(integer)  # rounded once, as orjson rounds it
            except OverflowError:  # beyond a float's range
                pass
            else:
                return as_float, as_float == integer
    else:
        number = float(token)
        if number not in (float("inf"), float("-inf")):
            return number, True
    from decimal import Decimal  # rarely needed: loaded then

    return Decimal(token.decode()), False


def read_value(data: bytes, pos: int, end: int) -> tuple[Any, bool]:
    """The Python value of the JSON value ``data[pos:end]`` (valid, as :func:`value_end` found
    it), and whether it is exact: what orjson reads, or, for what orjson refuses, the values it
    would give with Go's string rules (U+FFFD for bytes that are not UTF-8 and for lone
    surrogate escapes) and :func:`_number`'s numbers, at any depth Go reads.

    :raises DecodeError: the span is not one JSON value (never for a span the scanner found).
    """
    try:
        return orjson.loads(memoryview(data)[pos:end]), True
    except orjson.JSONDecodeError:
        pass
    try:
        return _build(data, pos)
    except (IndexError, AttributeError, TypeError, ValueError) as exc:  # a span not found by us
        raise DecodeError(f"envelope value at byte {pos} is not valid JSON: {exc!r}") from None


def _build(data: bytes, pos: int) -> tuple[Any, bool]:
    """:func:`read_value` for what orjson refuses: iterative, as :func:`value_end`."""
    exact = True
    parents: list[Any] = []  # the containers open around the value being read
    keys: list[str] = []  # for each open object, the key of the member being read
    value: Any
    while True:
        pos = skip(data, pos)
        byte = data[pos]
        if byte == _QUOTE:
            found = STRING.match(data, pos)
            value, same = _string(found.group())  # type: ignore[union-attr]
            exact = exact and same
            pos = found.end()  # type: ignore[union-attr]
        elif byte in (_OPEN_OBJECT, _OPEN_ARRAY):
            container: Any = {} if byte == _OPEN_OBJECT else []
            pos = skip(data, pos + 1)
            if data[pos] in (_CLOSE_OBJECT, _CLOSE_ARRAY):
                value = container
                pos += 1
            else:
                parents.append(container)
                if byte == _OPEN_OBJECT:
                    pos, key, same = _key(data, pos)
                    exact = exact and same
                    keys.append(key)
                continue
        elif byte in b"tfn":
            value = {0x74: True, 0x66: False, 0x6E: None}[byte]
            pos += 4 if byte != 0x66 else 5
        else:
            found = _NUMBER.match(data, pos)
            value, same = _number(found.group())  # type: ignore[union-attr]
            exact = exact and same
            pos = found.end()  # type: ignore[union-attr]
        while parents:  # a value ended: put it in its container, close what it completes
            parent = parents[-1]
            if type(parent) is list:
                parent.append(value)
            else:
                parent[keys[-1]] = value  # a duplicate key keeps its last value, as in Go
            pos = skip(data, pos)
            if data[pos] == _COMMA:
                if type(parent) is dict:
                    pos, keys[-1], same = _key(data, skip(data, pos + 1))
                    exact = exact and same
                else:
                    pos += 1
                break
            pos += 1
            value = parents.pop()
            if type(value) is dict:
                keys.pop()
        else:
            return value, exact


def _key(data: bytes, pos: int) -> tuple[int, str, bool]:
    """(value start, key text, exact) of the object member whose key starts at ``pos``."""
    stop, start = key_end(data, pos)
    text, same = _string(data[pos:stop])
    return start, text, same
