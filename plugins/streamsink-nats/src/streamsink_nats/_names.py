"""Reversible encoding of streamsink stream ids and group names into JetStream names.

Stream ids hold '/', ':' and other characters that JetStream stream names (no '.', '*', '>',
whitespace, '/' or '\\') and subject tokens (no '.', '*', '>' or whitespace) forbid. Letters,
digits and '-' are kept; every other byte of the UTF-8 text becomes ``_XX`` (two upper-case hex
digits), '_' included, so decoding is unambiguous.
"""

from __future__ import annotations

import re

from streamsink import ConfigurationError

__all__ = ["MAX_NAME", "decode", "encode"]

MAX_NAME = 255
"""nats-server's longest stream or consumer name."""

_KEPT = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")
_ESCAPE = re.compile(r"_([0-9A-F]{2})")


def encode(text: str) -> str:
    """``text`` as letters, digits, '-' and ``_XX`` escapes."""
    return "".join(chr(b) if b in _KEPT else f"_{b:02X}" for b in text.encode())


def decode(name: str) -> str:
    """The text :func:`encode` made ``name`` from. :raises ConfigurationError: not its output."""
    if encode_check(name):
        return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), name).encode("latin-1").decode()
    raise ConfigurationError(f"{name!r} is not an encoded streamsink name")


def encode_check(name: str) -> bool:
    """Whether ``name`` could be :func:`encode`'s output."""
    return re.fullmatch(r"([A-Za-z0-9-]|_[0-9A-F]{2})*", name) is not None
