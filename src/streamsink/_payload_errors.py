"""Why an envelope cannot be encoded: which field, where in its payload, and what is wrong.

Only run once orjson has refused an envelope, so the encoder's fast path pays nothing for it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, NoReturn

import attrs
import orjson

from ._exceptions import ConfigurationError
from ._streams import lone_surrogate, refuse_lone_surrogates, shown

__all__ = ["dumps", "refuse"]


def dumps(doc: dict[str, Any]) -> bytes:
    """``doc`` as orjson writes it.

    :raises ConfigurationError: orjson refused it (see :func:`refuse`).
    """
    try:
        return orjson.dumps(doc)
    except TypeError as exc:
        refused = exc
    refuse(doc, refused)  # outside the handler: the message says it all, unchained


def refuse(doc: dict[str, Any], exc: TypeError) -> NoReturn:
    """Raise the error for an envelope orjson refused: which field, where in its payload, why.

    :raises ConfigurationError: always.
    """
    for key in ("type", "event_key", "run_id", "session_id"):
        value = doc.get(key)
        if isinstance(value, str):
            refuse_lone_surrogates(f"event field {key}", value)
    problem = _payload_problem(doc.get("payload"))
    raise ConfigurationError(f"event payload cannot be encoded as JSON{problem or f': {exc}'}")


@attrs.frozen
class _Key:
    """A dict key orjson refuses, met while walking a payload."""

    key: object


def _children(container: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(path, value) of a container's items, keys orjson refuses included as :class:`_Key`."""
    if isinstance(container, dict):
        for key, item in dict.items(container):
            if type(key) is not str or lone_surrogate(key) is not None:
                yield f"{path}[{shown(key)}] (key)", _Key(key)
                continue
            shown_key = f".{key}" if key.isprintable() and len(key) <= 40 else f"[{shown(key)}]"
            yield path + shown_key, item
    else:
        for index, item in enumerate(container):
            yield f"{path}[{index}]", item


def _payload_problem(payload: Any) -> str | None:
    """What makes ``payload`` unencodable, as the end of an error message, or None if it is not
    found (the payload is then refused with orjson's own words).

    Depth-first in document order, with a stack of its own: a payload may be nested far deeper
    than the interpreter's recursion limit, or contain itself.
    """
    limit = _payload_depth_limit()
    opened: dict[int, str] = {}  # id -> path of each container on the current path
    stack: list[tuple[int, Iterator[tuple[str, Any]]]] = [(0, iter((("payload", payload),)))]
    while stack:
        owner, items = stack[-1]
        step = next(items, None)
        if step is None:
            stack.pop()
            opened.pop(owner, None)
            continue
        path, value = step
        if isinstance(value, dict | list) or type(value) is tuple:  # what orjson walks into
            again = opened.get(id(value))
            if again is not None:
                return f": reference cycle at {_cut(path)} (it is {_cut(again)} again)"
            if len(stack) > limit:
                return f": nesting deeper than {limit} levels at {_cut(path)}"
            opened[id(value)] = path
            stack.append((id(value), _children(value, path)))
            continue
        if type(value) is _Key:
            key = value.key
            reason = "keys must be strings" if type(key) is not str else "it has a lone surrogate"
            return f" at {_cut(path)} (a {type(key).__name__}): {reason}"
        try:
            orjson.dumps(value)
        except TypeError as exc:
            return f" at {_cut(path)} (a {type(value).__name__}): {exc}"
    return None


def _cut(path: str) -> str:
    """A payload path short enough for a message: its start and its end."""
    return path if len(path) <= 120 else f"{path[:70]}...{path[-40:]}"


@functools.cache
def _payload_depth_limit() -> int:
    """Levels of nesting orjson writes in a payload (its own limit, less the envelope's level),
    found by trying; asked only once a payload was refused."""

    def writes(depth: int) -> bool:
        value: Any = None
        for _ in range(depth):
            value = [value]
        try:
            orjson.dumps(value)
        except TypeError:
            return False
        return True

    # Bisection, keeping: orjson writes `low` levels and refuses `high`. Should some orjson
    # write 4096, deeper than that is called too deep here.
    low, high = 1, 4096
    if writes(high):
        return high - 1
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if writes(middle) else (low, middle)
    return low - 1
