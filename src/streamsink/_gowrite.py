"""Writing JSON as Go's encoding/json writes it (``json.Marshal``, HTML escaping on).

Two rules of Go's encode.go and indent.go: a string value is written by ``appendString`` (``<``,
``>``, ``&`` as ``\\u003c``, ``\\u003e``, ``\\u0026``; U+2028 and U+2029 as ``\\u2028``,
``\\u2029``; ``\\b \\f \\n \\r \\t`` short; other controls ``\\u00XX`` in lower-case hex), and the
bytes of a ``json.Marshaler`` (a ``json.RawMessage`` payload, loom's ``rawjson.Message``
server_data) are copied by ``appendCompact``: whitespace between tokens dropped, the same five
characters escaped inside strings, everything else, bytes that are not UTF-8 and ``\\ud800``
escapes included, left as it is.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

__all__ = ["go_compact", "go_quote", "same_value"]

# orjson writes strings as Go does (the same short escapes, lower-case \u00XX, DEL and non-ASCII
# as they are) but for the HTML characters and the two separators: escaping those in its output
# is Go's appendString.
_HTML = re.compile(rb"[<>&]|\xe2\x80[\xa8\xa9]")
_ESCAPES = {
    b"<": b"\\u003c",
    b">": b"\\u003e",
    b"&": b"\\u0026",
    b"\xe2\x80\xa8": b"\\u2028",
    b"\xe2\x80\xa9": b"\\u2029",
}
# What appendCompact changes: whitespace (outside strings, where it is only allowed) and the
# five characters (inside strings, the only place they can be).
_COMPACTED = re.compile(rb"[ \t\n\r<>&]|\xe2\x80[\xa8\xa9]")
_TOKENS = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[ \t\n\r]++')


def _escape(found: re.Match[bytes]) -> bytes:
    return _ESCAPES[found.group()]


def go_quote(text: str) -> bytes:
    """``text`` as a JSON string, written as Go writes a string.

    :raises TypeError: ``text`` has a lone surrogate (orjson's refusal; no Go string holds one).
    """
    quoted = orjson.dumps(text)
    return _HTML.sub(_escape, quoted) if _HTML.search(quoted) else quoted


def _compact_token(found: re.Match[bytes]) -> bytes:
    token = found.group()
    if token[0] != 0x22:  # whitespace between tokens
        return b""
    return _HTML.sub(_escape, token)


def go_compact(raw: bytes) -> bytes:
    """Valid JSON ``raw`` as Go's encoder copies a Marshaler's output (``appendCompact`` with
    HTML escaping). Go's own output is left as it is, byte for byte."""
    if _COMPACTED.search(raw) is None:
        return raw
    return _TOKENS.sub(_compact_token, raw)


def same_value(left: Any, right: Any) -> bool:
    """Whether two decoded JSON values are the same JSON: equal, of the same types (``1``,
    ``1.0`` and ``True`` differ), keys in the same order. Iterative, for values nested deeper
    than the recursion limit."""
    pending = [(left, right)]
    while pending:
        a, b = pending.pop()
        if type(a) is not type(b):
            return False
        if type(a) is dict:
            if list(a) != list(b):
                return False
            pending.extend(zip(a.values(), b.values(), strict=True))
        elif type(a) is list:
            if len(a) != len(b):
                return False
            pending.extend(zip(a, b, strict=True))
        elif a != b and not (a != a and b != b):  # NaN (from a Decimal) equals itself here
            return False
    return True
