"""Option validators shared by the frozen options classes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ._exceptions import ConfigurationError

__all__ = ["Validator", "rule"]

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def rule(accepts: Callable[[Any], bool], expected: str) -> Validator:
    """An attrs validator raising ConfigurationError that names the options class, the option,
    the value and what was expected."""

    def validate(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not accepts(value):
            raise ConfigurationError(
                f"{type(inst).__name__}.{attribute.name}={value!r} is invalid: expected {expected}"
            )

    return validate
