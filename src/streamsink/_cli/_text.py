"""Text that is safe to print: escaped control and format characters, redacted URLs."""

from __future__ import annotations

import contextlib
import re
import sys
import unicodedata
from typing import TextIO

from ..backend._url import redact_url

# -- safe text ----------------------------------------------------------------------------------

_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Control (C0, DEL, C1), format (bidi overrides and isolates, zero-width characters), surrogate
# and unassigned characters, and the line and paragraph separators: none prints as itself.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Cn", "Zl", "Zp"})


def _escape_char(char: str) -> str:
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape(text: str) -> str:
    r"""``text`` with every character a terminal would act on (or that would break a line)
    written as a Python-style escape: ``\x1b``, ``\r``, ``\n``, ``\x9b``, ``\u202e``.
    Everything else, non-ASCII letters and emoji included, is kept."""
    if text.isprintable():  # the usual case; isprintable() is False for every unsafe category
        return text
    return "".join(
        _escape_char(c) if unicodedata.category(c) in _UNSAFE_CATEGORIES else c for c in text
    )


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")


def safe_message(text: str) -> str:
    """One line for stderr from an error's text: URLs in it redacted (a second line of defence:
    streamsink's own messages already redact theirs), whitespace runs collapsed, the rest
    escaped."""
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group()), text)
    return escape(" ".join(text.split()))


def _warn(errors: TextIO | None, text: str) -> None:
    """A ``streamsink: warning:`` line; a closed stderr is no reason to stop."""
    with contextlib.suppress(BrokenPipeError):
        print(f"streamsink: warning: {safe_message(text)}", file=errors or sys.stderr, flush=True)
