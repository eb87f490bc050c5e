"""Options of the memory backend, validated from a ``memory://`` URL's query string."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from streamsink import ConfigurationError
from streamsink.backend import BackendURL

__all__ = ["MemoryOptions"]

# What each option accepts: (smallest value, how the error message describes it).
_INTEGER_OPTIONS = {
    "maxlen": (0, "an integer >= 0 (0 = unbounded)"),
    "yield_every": (1, "an integer >= 1 (1 = every append is a checkpoint)"),
}


def _check_integer(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    smallest, expected = _INTEGER_OPTIONS[attribute.name]
    if type(value) is not int or value < smallest:
        raise ConfigurationError(
            f"memory backend option {attribute.name}={value!r} is invalid: expected {expected}"
        )


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
    """

    maxlen: int = attrs.field(default=1000, validator=_check_integer)
    yield_every: int = attrs.field(default=16, validator=_check_integer)

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
        accepted = [field.name for field in attrs.fields(cls)]
        unknown = sorted(set(query) - set(accepted))
        if unknown:
            raise ConfigurationError(
                f"unknown memory backend option(s) {', '.join(map(repr, unknown))}; "
                f"accepted: {', '.join(accepted)}"
            )
        values: dict[str, int] = {}
        for name, text in query.items():
            try:
                values[name] = int(text.strip())
            except ValueError:
                raise ConfigurationError(
                    f"memory backend option {name}={text!r} is invalid: "
                    f"expected {_INTEGER_OPTIONS[name][1]}"
                ) from None
        return cls(**values)
