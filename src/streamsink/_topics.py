"""Topics: the optional label of an entry (pulse field ``t``), and how subscriptions select by it.

pulse's rules (``streaming/options``, ``newSink``/``newReader``): an entry without a topic has
topic ``""``; a sink's or reader's ``Topic`` selects entries with exactly that topic, its
``TopicPattern`` those whose topic an **unanchored** Go RE2 regex matches (Python's
``re.search``); ``Topic`` wins when both are set; filtering happens on the client, after the
read. pulse writes no ``t`` field for the topic ``""``.

Patterns are RE2 syntax, matched here by Python's :mod:`re`: :func:`compile_topic_pattern`
refuses what RE2 refuses (backreferences, lookarounds, atomic groups, possessive repeats, ``\\Z``,
and the like), so a pattern accepted here is accepted by a Go service too, and rewrites the RE2
forms Python spells differently (``\\z``, ``(?<name>...)``, ``\\Q...\\E``, ``\\x{...}``, octal
escapes, ``[[:alpha:]]``), so that both match the same topics.
"""

from __future__ import annotations

from collections.abc import Callable

from ._exceptions import ConfigurationError
from ._streams import shown
from ._topic_patterns import compile_topic_pattern

__all__ = [
    "MAX_TOPIC_LENGTH",
    "TopicFilter",
    "compile_topic_pattern",
    "event_topic",
    "topic_filter",
    "validate_topic",
]

#: Longest topic a sink writes: a topic is stored with every entry, so it is kept to the size of
#: a name (the stream id limit), not of a payload.
MAX_TOPIC_LENGTH = 512

TopicFilter = Callable[[str | None], bool]
"""Whether an entry's topic (None: the entry has none) passes a subscription's filter."""


def event_topic(event: object) -> str | None:
    """The event's own ``topic`` attribute, or None when it has none.

    Pass it as ``SinkOptions(topic=event_topic)`` to publish each event under the topic it
    carries: a :class:`StreamEvent` built with ``topic=...``, or one received from another stream
    (relayed with its topic). By default a sink writes no topic, whatever the event carries.
    """
    return getattr(event, "topic", None)


def validate_topic(value: object) -> str:
    """Return ``value`` (as a plain ``str``) if a sink may write it as an entry's topic.

    A topic is a name: subscriptions select by it (an exact ``topic`` filter must be able to
    spell it), and tools show it next to the event type. So it follows the event type's rule:
    printable text (:meth:`str.isprintable`), where a newline or escape would garble a terminal
    line or an SSE frame, and an invisible character (a bidi override, a zero-width space) would
    make a filter that reads right miss. It is not empty, because pulse writes no topic for
    ``""`` (return None for no topic), and at most :data:`MAX_TOPIC_LENGTH` characters, as it is
    stored with every entry.

    :raises ConfigurationError: not a string, empty, too long, or not printable (the message
        names the first offending character and its index).
    """
    if not isinstance(value, str):
        raise ConfigurationError(f"topic must be a string or None, got {type(value).__name__}")
    text = str.__str__(value)  # a str subclass (a StrEnum member): its value
    if not 0 < len(text) <= MAX_TOPIC_LENGTH:
        hint = " (None means no topic)" if not text else ""
        raise ConfigurationError(
            f"topic must be 1 to {MAX_TOPIC_LENGTH} characters, got {len(text)}{hint}"
        )
    if not text.isprintable():
        index, char = next((i, c) for i, c in enumerate(text) if not c.isprintable())
        raise ConfigurationError(
            f"topic {shown(text)} contains {char!r} (U+{ord(char):04X}) at index {index}; "
            "expected printable text: no control, format, separator or surrogate characters"
        )
    return text


def topic_filter(topic: str | None, pattern: str | None) -> TopicFilter | None:
    """The filter of a subscription with these options, or None when it keeps every entry.

    ``topic`` (exact) wins over ``pattern``; an empty pattern matches every topic, so it filters
    nothing (as pulse ignores an empty ``TopicPattern``). An entry without a topic is matched as
    the topic ``""``.

    :raises ConfigurationError: ``pattern`` is not a valid RE2 pattern.
    """
    if topic is not None:
        wanted = topic

        def exact(entry_topic: str | None) -> bool:
            return entry_topic == wanted

        return exact
    if not pattern:
        return None
    search = compile_topic_pattern(pattern).search
    # A stream carries few distinct topics: remember the answer for each rather than run the
    # regex on every entry. Cleared when it grows large (topics that are all different).
    known: dict[str | None, bool] = {}

    def matches(entry_topic: str | None) -> bool:
        hit = known.get(entry_topic)
        if hit is None:
            hit = search(entry_topic or "") is not None
            if len(known) >= 1024:
                known.clear()
            known[entry_topic] = hit
        return hit

    return matches
