"""Options from a backend URL's query string: one parser and one set of messages for every
backend (and the core's own options), so that a bad option reads the same wherever it is.

A backend keeps its options in a frozen attrs class whose validators are :func:`option_rule`
(or raise :func:`option_error`), and builds it from the query with :func:`options_from_query`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from .._exceptions import ConfigurationError
from .._streams import shown

__all__ = [
    "OptionValidator",
    "bool_from_text",
    "int_from_text",
    "option_error",
    "option_rule",
    "options_from_query",
    "refuse_unknown_options",
    "retention_seconds",
    "seconds_from_text",
    "seconds_or_zero_from_text",
    "text_or_none_from_text",
]

OptionsT = TypeVar("OptionsT")
OptionValidator = Callable[[Any, "attrs.Attribute[Any]", Any], None]
"""An attrs validator of an options class."""


def option_error(owner: str, name: str, value: object, expected: str) -> ConfigurationError:
    """The error of an option with a bad value: ``<owner>.<name>=<value> is invalid: expected
    <expected>``. ``value`` is shown escaped (no control character reaches a terminal)."""
    return ConfigurationError(f"{owner}.{name}={shown(value)} is invalid: expected {expected}")


def option_rule(accepts: Callable[[Any], bool], expected: str) -> OptionValidator:
    """An attrs validator raising :func:`option_error` (owner: the options class's name) for a
    value ``accepts`` refuses."""

    def validate(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not accepts(value):
            raise option_error(type(inst).__name__, attribute.name, value, expected)

    validate.expected = expected  # type: ignore[attr-defined]  # read by options_from_query
    return validate


def refuse_unknown_options(given: Iterable[str], accepted: Sequence[str], *, owner: str) -> None:
    """Raise for option names outside ``accepted``, naming them and listing the accepted ones.

    :raises ConfigurationError: ``unknown <owner> option(s) 'a', 'b'; accepted: x, y, z``.
    """
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise ConfigurationError(
            f"unknown {owner} option(s) {', '.join(map(shown, unknown))}; "
            f"accepted: {', '.join(accepted)}"
        )


def options_from_query(
    cls: type[OptionsT],
    query: Mapping[str, str],
    *,
    owner: str,
    parsers: Mapping[str, Callable[[str], Any]],
    accepted: Sequence[str] | None = None,
) -> OptionsT:
    """Build the options class ``cls`` from a URL query's text values.

    ``parsers`` turns each option's text into its value, raising :class:`ValueError` with what
    was expected (the ``*_from_text`` functions here do); ``accepted`` (default: every field of
    ``cls``) is the names this URL may give. The class's own validators then check the values.
    Text a parser refuses is reported with what the field's validator expects when it says
    (an ``expected`` attribute, as :func:`option_rule`'s have), else with the parser's words.

    :raises ConfigurationError: an unknown option (``owner`` names where it was given, e.g.
        ``"redis:// URL"``), text a parser refuses, or a value a validator refuses.
    """
    names = accepted if accepted is not None else [f.name for f in attrs.fields(cls)]  # type: ignore[arg-type]
    refuse_unknown_options(query, names, owner=owner)
    fields = attrs.fields_dict(cls)  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for name, text in query.items():
        try:
            values[name] = parsers[name](text)
        except ValueError as exc:
            expected = getattr(fields[name].validator, "expected", None) or str(exc)
            raise option_error(cls.__name__, name, text, expected) from None
    return cls(**values)


def int_from_text(text: str) -> int:
    """An integer option. :raises ValueError: not an integer."""
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError("an integer") from None


def seconds_from_text(text: str) -> float | None:
    """A number of seconds, or ``none`` (or empty) for None. :raises ValueError: neither."""
    if text.strip().lower() in ("none", ""):
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError("a number of seconds > 0, or 'none' for no timeout") from None


def seconds_or_zero_from_text(text: str) -> float:
    """A number of seconds where 0 means off (retention's ``max_age``, ``idle_ttl``).

    :raises ValueError: not a number.
    """
    try:
        return float(text)
    except ValueError:
        raise ValueError("a number of seconds >= 0.001, or 0 for off") from None


def _retention_seconds_ok(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    # A period under a millisecond would round to 0 ms on a broker that counts milliseconds,
    # silently turning retention off (or expiring every stream at once).
    return value == 0 or (math.isfinite(value) and value >= 0.001)


retention_seconds: OptionValidator = option_rule(
    _retention_seconds_ok, "a number of seconds >= 0.001, or 0 for off"
)
"""The validator of a retention period option (``max_age``, ``idle_ttl``): seconds, 0 = off."""


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def bool_from_text(text: str) -> bool:
    """A boolean: ``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/``off`` (any case).

    :raises ValueError: anything else.
    """
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"a boolean ({'/'.join(_TRUE)} or {'/'.join(_FALSE)})")


def text_or_none_from_text(text: str) -> str | None:
    """Text as given, empty text as None."""
    return text or None
