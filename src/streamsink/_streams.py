"""Stream id rules shared by the sink and the subscriber."""

from __future__ import annotations

import re

from ._events import Event
from ._exceptions import ConfigurationError

__all__ = ["MAX_STREAM_ID_LENGTH", "default_stream_id", "validate_stream_id"]

MAX_STREAM_ID_LENGTH = 512
# The characters goa.design/pulse refuses in a stream name; refusing them here keeps every name
# we accept readable by Go services too.
_FORBIDDEN = re.compile(r"[ \x00*?\[\]]")


def validate_stream_id(stream_id: object) -> str:
    """Return ``stream_id`` if pulse would accept it as a stream name.

    :raises ConfigurationError: not a string, empty, longer than 512 characters, or containing a
        space, NUL, ``*``, ``?``, ``[`` or ``]``.
    """
    if not isinstance(stream_id, str):
        raise ConfigurationError(f"stream id must be a string, got {type(stream_id).__name__}")
    if not 0 < len(stream_id) <= MAX_STREAM_ID_LENGTH:
        raise ConfigurationError(
            f"stream id must be 1 to {MAX_STREAM_ID_LENGTH} characters, got {len(stream_id)}"
        )
    bad = _FORBIDDEN.search(stream_id)
    if bad:
        raise ConfigurationError(
            f"stream id {stream_id[:80]!r} contains {bad.group()!r}; stream ids may not contain "
            "space, NUL, '*', '?', '[' or ']'"
        )
    return stream_id


def default_stream_id(event: Event) -> str:
    """``session/<session_id>``, the stream loom-mcp runtimes publish a session's events to.

    :raises ConfigurationError: ``stream event missing session id`` when the session id is empty.
    """
    session_id = event.session_id
    if not session_id:
        raise ConfigurationError("stream event missing session id")
    return f"session/{session_id}"
