"""Options of the memory backend, validated from a ``memory://`` URL's query string."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from streamsink import ConfigurationError
from streamsink.backend import BackendURL

__all__ = ["MemoryOptions"]


def _check_maxlen(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not int or value < 0:
        raise ConfigurationError(
            f"memory backend option maxlen={value!r} is invalid: expected an integer >= 0 "
            "(0 = unbounded)"
        )


@attrs.frozen(kw_only=True)
class MemoryOptions:
    """How a memory backend writes.

    .. attribute:: maxlen  keep at most this many entries per stream, trimming the oldest on
       append (0 = unbounded). The default, 1000, is pulse's.
    """

    maxlen: int = attrs.field(default=1000, validator=_check_maxlen)

    @classmethod
    def from_url(cls, url: BackendURL) -> MemoryOptions:
        """Options from a URL's query, e.g. ``memory://?maxlen=10000``.

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
        if "maxlen" not in query:
            return cls()
        text = query["maxlen"]
        try:
            maxlen = int(text.strip())
        except ValueError:
            raise ConfigurationError(
                f"memory backend option maxlen={text!r} is invalid: expected an integer >= 0 "
                "(0 = unbounded)"
            ) from None
        return cls(maxlen=maxlen)
