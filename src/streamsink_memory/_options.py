"""Options of the memory backend, validated from a ``memory://`` URL's query string."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from streamsink.backend import BackendURL
from streamsink.backend.options import (
    int_from_text,
    option_rule,
    options_from_query,
    retention_seconds,
    seconds_or_zero_from_text,
)

__all__ = ["MemoryOptions"]


@attrs.frozen(kw_only=True)
class MemoryOptions:
    """How a memory backend writes.

    .. attribute:: maxlen  keep at most this many entries per stream, trimming the oldest on
       append (0 = unbounded). The default, 1000, is pulse's.
    .. attribute:: yield_every  appends between two checkpoints. An append is a synchronous
       write to the broker, so this backend yields to the event loop only on every
       ``yield_every``-th append (per backend) instead of on each: the other appends cost no
       pass of the event loop, and a producer that sends in a tight loop still lets readers
       run (and a cancelled one stop) every ``yield_every`` sends. 1 makes every append an
       anyio checkpoint, as a network backend's always is. Default 16.
    .. attribute:: max_age  seconds: an append trims the entries of its stream older than
       this (by their id's time, on the broker's ``wall_clock``), exactly. 0 (default) = off.
    .. attribute:: idle_ttl  seconds: a stream this backend appends to expires that long after
       its last append (on the broker's ``clock``), as a Redis key with ``PEXPIRE`` does: it
       vanishes with its groups. 0 (default) = off.
    """

    maxlen: int = attrs.field(
        default=1000,
        validator=option_rule(
            lambda v: type(v) is int and v >= 0, "an integer >= 0 (0 = unbounded)"
        ),
    )
    yield_every: int = attrs.field(
        default=16,
        validator=option_rule(
            lambda v: type(v) is int and v >= 1,
            "an integer >= 1 (1 = every append is a checkpoint)",
        ),
    )

    max_age: float = attrs.field(default=0, validator=retention_seconds)
    idle_ttl: float = attrs.field(default=0, validator=retention_seconds)

    @classmethod
    def from_url(cls, url: BackendURL) -> MemoryOptions:
        """Options from a URL's query, e.g. ``memory://?maxlen=10000&yield_every=1``.

        :raises ConfigurationError: an unknown or repeated key, or a bad value.
        """
        return cls.from_query(url.options())

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> MemoryOptions:
        """Options from text key/value pairs.

        :raises ConfigurationError: an unknown key (the message lists the accepted ones), or
            a value that does not parse (the message names the option, the value, and what
            was expected).
        """
        return options_from_query(cls, query, owner="memory://", parsers=_PARSERS)


_PARSERS = {
    "maxlen": int_from_text,
    "yield_every": int_from_text,
    "max_age": seconds_or_zero_from_text,
    "idle_ttl": seconds_or_zero_from_text,
}
