"""Fast construction of frozen, slotted attrs classes made once per event."""

from __future__ import annotations

from collections.abc import Callable

import attrs

__all__ = ["slot_setters"]


def slot_setters(cls: type) -> tuple[Callable[[object, object], None], ...]:
    """The ``__set__`` of each field's slot of a slotted attrs class, in field order.

    attrs' ``__init__`` of a frozen class sets each field through ``object.__setattr__``;
    calling the slots' own setters does the same work in about three quarters of the time
    (``python -m benchmarks.micro``), which counts for the few classes made once per event sent
    or read (entries, records, published events, decoded events).
    """
    return tuple(cls.__dict__[field.name].__set__ for field in attrs.fields(cls))
