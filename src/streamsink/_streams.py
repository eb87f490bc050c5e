"""Rules for the names streamsink writes: stream ids, group and consumer names, event types.

Shared by the sink, the subscriber and the backends, so a name one backend accepts every backend
accepts, and Go's pulse reads it back. Also how a refused value is shown in an error message.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Callable

from ._events import Event
from ._exceptions import ConfigurationError

__all__ = [
    "MAX_STREAM_ID_LENGTH",
    "dead_letter_stream_id",
    "default_stream_id",
    "lone_surrogate",
    "refuse_lone_surrogates",
    "shown",
    "validate_event_type",
    "validate_name",
    "validate_stream_id",
]

MAX_STREAM_ID_LENGTH = 512
# The characters goa.design/pulse refuses in a stream name; refusing them here keeps every name
# we accept readable by Go services too.
_FORBIDDEN = re.compile(r"[ \x00*?\[\]]")
_SURROGATE = re.compile("[\ud800-\udfff]")

# Values in error messages: escaped, cut short, and safe on any value (reprlib stops at a few
# levels of nesting, where repr() of a deeply nested list raises RecursionError).
_repr = reprlib.Repr()
_repr.maxstring = 80
_repr.maxother = 80
_repr.maxlevel = 3


def shown(value: object) -> str:
    """``value`` for an error message: its repr, escaped, cut short, never raising."""
    try:
        return _repr.repr(value)
    except Exception:  # e.g. an int of more digits than int-to-text conversion allows
        return f"<{type(value).__name__} object>"


def lone_surrogate(text: str) -> int | None:
    """The index of the first lone surrogate in ``text`` (a code point that UTF-8, hence Redis
    and every JSON encoder we write with, cannot encode), or None."""
    if text.isascii():
        return None
    found = _SURROGATE.search(text)
    return None if found is None else found.start()


def refuse_lone_surrogates(what: str, text: str) -> None:
    """:raises ConfigurationError: ``text`` (``what`` names it) has a lone surrogate."""
    index = lone_surrogate(text)
    if index is not None:
        raise ConfigurationError(
            f"{what} {shown(text)} contains a lone surrogate {text[index]!r} at index {index}; "
            "expected text that can be encoded as UTF-8"
        )


def validate_stream_id(stream_id: object) -> str:
    """Return ``stream_id`` if pulse would accept it as a stream name.

    :raises ConfigurationError: not a string, empty, longer than 512 characters, containing a
        space, NUL, ``*``, ``?``, ``[`` or ``]``, or a lone surrogate (it cannot be encoded).
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
            f"stream id {shown(stream_id)} contains {bad.group()!r}; stream ids may not contain "
            "space, NUL, '*', '?', '[' or ']'"
        )
    refuse_lone_surrogates("stream id", stream_id)
    return stream_id


def validate_name(kind: str, value: object) -> str:
    """Return ``value`` if it can name a ``kind`` (``"group"``, ``"consumer"``) in any backend.

    Backends call it when a group consumer is opened, so that every backend refuses the same
    names, with the same message.

    :raises ConfigurationError: not a string, empty, or containing a lone surrogate.
    """
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{kind} name must be a non-empty string, got {shown(value)}")
    refuse_lone_surrogates(f"{kind} name", value)
    return value


def validate_event_type(value: object) -> str:
    """Return ``value`` as a plain ``str`` if it can be an event type.

    An event type is written as each entry's name (pulse field ``n``), and readers copy it into
    an SSE ``event:`` line or a terminal line: a newline or other control character there would
    start a frame or a line of its own, and format characters (bidi overrides) would disguise
    one. So an event type must be printable as :meth:`str.isprintable` defines it: no character
    of the Unicode categories "Other" (control, format, surrogate, private use, unassigned) or
    "Separator" (line and paragraph separators, and spaces other than the ASCII space).

    :raises ConfigurationError: not a string, empty, or not printable; the message names the
        first offending character and its index.
    """
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"event type must be a non-empty string, got {shown(value)}")
    text = str.__str__(value)  # a str subclass (an EventType member): its value
    if not text.isprintable():
        index, char = next((i, c) for i, c in enumerate(text) if not c.isprintable())
        raise ConfigurationError(
            f"event type {shown(text)} contains {char!r} (U+{ord(char):04X}) at index {index}; "
            "expected printable text: no control, format, separator or surrogate characters"
        )
    return text


def default_stream_id(event: Event) -> str:
    """``session/<session_id>``, the stream loom-mcp runtimes publish a session's events to.

    :raises ConfigurationError: ``stream event missing session id`` when the session id is empty.
    """
    session_id = event.session_id
    if not session_id:
        raise ConfigurationError("stream event missing session id")
    return f"session/{session_id}"


def dead_letter_stream_id(make: Callable[[str], object], stream_id: str) -> str:
    """The dead-letter stream of ``stream_id``, as ``make`` (the ``dead_letter_stream`` option)
    names it, checked before anything is written there.

    :raises ConfigurationError: ``make`` raised, or returned something that is not a valid
        stream id (:func:`validate_stream_id`); the message names the option and both ids.
    """
    try:
        made = make(stream_id)
    except Exception as exc:
        raise ConfigurationError(
            f"SubscriberOptions.dead_letter_stream raised on stream id {shown(stream_id)}: {exc!r}"
        ) from exc
    try:
        dead_letters = validate_stream_id(made)
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"SubscriberOptions.dead_letter_stream gave {shown(made)} for stream id "
            f"{shown(stream_id)}, which is not a valid stream id: {exc}"
        ) from None
    return dead_letters
