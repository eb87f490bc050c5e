"""Options of the NATS backend, validated from a ``nats://`` URL's query string."""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs
from streamsink.backend.options import (
    int_from_text,
    option_rule,
    options_from_query,
    retention_seconds,
    seconds_from_text,
    seconds_or_zero_from_text,
)

__all__ = ["NatsOptions"]

# JetStream stream names may not hold '.', '*', '>', whitespace or path separators; subject
# tokens may not hold '.'-less wildcards or whitespace. The prefixes are kept to plain characters.
_STREAM_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SUBJECT_PREFIX = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


def _positive_seconds(value: object) -> bool:
    return isinstance(value, float) and value > 0


@attrs.frozen(kw_only=True)
class NatsOptions:
    """How a NATS backend maps streams onto JetStream.

    .. attribute:: stream_prefix   prefix of the JetStream stream made for each streamsink
       stream (default ``STREAMSINK_``)
    .. attribute:: subject_prefix  prefix of the one subject of each such stream (default
       ``streamsink``: subject ``streamsink.<encoded stream id>``)
    .. attribute:: max_msgs        keep at most this many entries per stream (JetStream
       ``max_msgs``, oldest discarded; 0 = unbounded). Default 1000, as pulse's maxlen.
    .. attribute:: replicas        JetStream replicas of each stream, 1 to 5 (default 1)
    .. attribute:: storage         ``file`` (default; entries outlive the server) or ``memory``
    .. attribute:: connect_timeout seconds to connect (default 2)
    .. attribute:: request_timeout seconds a JetStream API call or publish acknowledgement may
       take before it counts as the server being unavailable (default 5)
    .. attribute:: max_age         seconds: JetStream's own ``max_age`` of each stream the
       backend creates, so the server removes entries older than that (by its clock, at any
       time, not only on append). 0 (default) = off. JetStream has no expiry of idle streams
       (no ``idle_ttl``): with ``max_age`` an idle stream empties, but stays.
    """

    stream_prefix: str = attrs.field(
        default="STREAMSINK_",
        validator=option_rule(
            lambda v: isinstance(v, str) and _STREAM_PREFIX.fullmatch(v) is not None,
            "1 to 64 letters, digits, '_' or '-'",
        ),
    )
    subject_prefix: str = attrs.field(
        default="streamsink",
        validator=option_rule(
            lambda v: isinstance(v, str) and _SUBJECT_PREFIX.fullmatch(v) is not None,
            "subject tokens of letters, digits, '_' or '-', separated by '.'",
        ),
    )
    max_msgs: int = attrs.field(
        default=1000,
        validator=option_rule(
            lambda v: type(v) is int and v >= 0, "an integer >= 0 (0 = unbounded)"
        ),
    )
    replicas: int = attrs.field(
        default=1,
        validator=option_rule(lambda v: type(v) is int and 1 <= v <= 5, "an integer from 1 to 5"),
    )
    storage: str = attrs.field(
        default="file",
        validator=option_rule(lambda v: v in ("file", "memory"), "'file' or 'memory'"),
    )
    connect_timeout: float = attrs.field(
        default=2.0, validator=option_rule(_positive_seconds, "a number of seconds > 0")
    )
    request_timeout: float = attrs.field(
        default=5.0, validator=option_rule(_positive_seconds, "a number of seconds > 0")
    )
    max_age: float = attrs.field(default=0, validator=retention_seconds)

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> NatsOptions:
        """Options from a URL's query, e.g. ``nats://host:4222?max_msgs=10000&replicas=3``.

        :raises ConfigurationError: an unknown key (the message lists the accepted ones), or
            a value that does not parse or is out of range (the message names the option).
        """
        return options_from_query(cls, query, owner="nats:// URL", parsers=_PARSERS)


def _text(text: str) -> str:
    return text


def _seconds(text: str) -> float:
    value = seconds_from_text(text)
    if value is None:
        raise ValueError("a number of seconds > 0")
    return value


_PARSERS = {
    "stream_prefix": _text,
    "subject_prefix": _text,
    "max_msgs": int_from_text,
    "replicas": int_from_text,
    "storage": _text,
    "connect_timeout": _seconds,
    "request_timeout": _seconds,
    "max_age": seconds_or_zero_from_text,
}
