"""The Go types payload fields have: how each is checked, written and read as JSON."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from ._schema import GoStruct

__all__ = [
    "ANY_MAP",
    "BOOL",
    "BYTES",
    "DURATION",
    "EMPTY",
    "INT",
    "INT64",
    "MAX_DEPTH",
    "RAW",
    "STRING",
    "STRINGS",
    "STRING_MAP",
    "WRONG",
    "Kind",
    "json_type",
    "struct",
    "structs",
]

_INT64 = (-(2**63), 2**63 - 1)  # Go's int is 64 bits on every platform loom runs on
#: Structs nested deeper than this are refused (only a ToolError's Cause chain can nest).
MAX_DEPTH = 64
WRONG: Any = object()  # a decoder's "this value is of the wrong shape" (the problem is recorded)
EMPTY: Mapping[str, Any] = MappingProxyType({})


def json_type(value: object) -> str:
    """What a decoded JSON value is, in JSON's words ("a string", "an array", "null")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"  # not JSON: only a locally built payload holds one


# -- kinds: one Go type each ----------------------------------------------------------------------


class Kind:
    """One Go type: its name, what it holds in Python, how it is written and read."""

    #: Go's spelling, as docs/events.md shows it.
    go: str = ""
    #: What the JSON value must be, for messages ("a string").
    expected: str = ""
    #: JSON null resets it to nil (slices, maps, bytes); for others null is a no-op, as in Go.
    nilable: bool = False

    def zero(self) -> Any:
        raise NotImplementedError

    def convert(self, value: Any) -> Any:
        """What a builder's argument becomes (lists to tuples, dicts to read-only mappings)."""
        return value

    def valid(self, value: Any) -> bool:
        raise NotImplementedError

    def out_of_range(self, value: Any) -> str | None:
        """Why a value of the right type is still not valid (an integer too big for Go)."""
        return None

    def empty(self, value: Any) -> bool:
        """Go's ``omitempty`` test for a non-nil value."""
        return not value

    def encode(self, value: Any) -> Any:
        return value

    def decode(self, value: Any, path: str, problems: list[str], depth: int) -> Any:
        """The Python value of a non-null JSON value, or ``WRONG`` with a problem recorded."""
        if self.valid(value):
            return self.convert(value)
        problems.append(f"{path}: expected {self.expected}, got {json_type(value)}")
        return WRONG


class _String(Kind):
    go, expected = "string", "a string"

    def zero(self) -> str:
        return ""

    def valid(self, value: Any) -> bool:
        return isinstance(value, str)


class _Int(Kind):
    expected = "an integer"

    def __init__(self, go: str) -> None:
        self.go = go

    def zero(self) -> int:
        return 0

    def valid(self, value: Any) -> bool:
        # bool is an int to Python, never to Go; and Go refuses 3.0 for an int.
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and _INT64[0] <= value <= _INT64[1]
        )

    def out_of_range(self, value: Any) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool) and not self.valid(value):
            return f"{value} does not fit a 64-bit {self.go}"
        return None

    def decode(self, value: Any, path: str, problems: list[str], depth: int) -> Any:
        reason = self.out_of_range(value)
        if reason is not None:
            problems.append(f"{path}: {reason}")
            return WRONG
        return super().decode(value, path, problems, depth)


class _Bool(Kind):
    go, expected = "bool", "a boolean"

    def zero(self) -> bool:
        return False

    def valid(self, value: Any) -> bool:
        return isinstance(value, bool)


class _Bytes(Kind):
    """``[]byte``: standard base64 with padding on the wire."""

    go, expected, nilable = "[]byte", "a base64 string", True

    def zero(self) -> bytes:
        return b""

    def valid(self, value: Any) -> bool:
        return isinstance(value, bytes)

    def encode(self, value: Any) -> str:
        return base64.b64encode(value).decode("ascii")

    def decode(self, value: Any, path: str, problems: list[str], depth: int) -> Any:
        if isinstance(value, str):
            try:
                # Go's base64.StdEncoding skips CR and LF, and wants the padding.
                return base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True)
            except (binascii.Error, ValueError):
                problems.append(f"{path}: not valid base64")
                return WRONG
        problems.append(f"{path}: expected {self.expected}, got {json_type(value)}")
        return WRONG


class _Raw(Kind):
    """``rawjson.Message``: any JSON value, kept as decoded; nil (None) when absent or null."""

    go, expected, nilable = "rawjson.Message", "any JSON value", True

    def zero(self) -> None:
        return None

    def valid(self, value: Any) -> bool:
        return True

    def empty(self, value: Any) -> bool:
        return False  # a non-nil message is never empty, even 0, "" or []


class _Strings(Kind):
    go, expected, nilable = "[]string", "an array of strings", True

    def zero(self) -> tuple[str, ...]:
        return ()

    def convert(self, value: Any) -> Any:
        return tuple(value) if isinstance(value, list | tuple) else value

    def valid(self, value: Any) -> bool:
        return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)

    def decode(self, value: Any, path: str, problems: list[str], depth: int) -> Any:
        if not isinstance(value, list):
            return super().decode(value, path, problems, depth)
        items = ["" if v is None else v for v in value]  # Go: null into a string is ""
        for index, item in enumerate(items):
            if not isinstance(item, str):
                problems.append(f"{path}[{index}]: expected a string, got {json_type(item)}")
                return WRONG
        return tuple(items)


class _Map(Kind):
    """``map[string]any`` (or ``map[string]string``): Go writes the keys sorted."""

    nilable = True

    def __init__(self, go: str, *, strings: bool) -> None:
        self.go, self._strings = go, strings
        self.expected = "an object of strings" if strings else "an object"

    def zero(self) -> Mapping[str, Any]:
        return EMPTY

    def convert(self, value: Any) -> Any:
        return MappingProxyType(dict(value)) if isinstance(value, Mapping) else value

    def valid(self, value: Any) -> bool:
        return isinstance(value, Mapping) and all(
            isinstance(k, str) and (not self._strings or isinstance(v, str))
            for k, v in value.items()
        )

    def encode(self, value: Any) -> dict[str, Any]:
        if self._strings:
            return dict(sorted(value.items()))
        # encoding/json sorts every map's keys, at every depth of an `any` value: orjson does
        # the same, in C. A value JSON cannot hold raises TypeError here, as it would in the sink.
        ordered: dict[str, Any] = orjson.loads(
            orjson.dumps(dict(value), option=orjson.OPT_SORT_KEYS)
        )
        return ordered

    def decode(self, value: Any, path: str, problems: list[str], depth: int) -> Any:
        if isinstance(value, dict):
            if self._strings:  # Go: null into a string element is ""
                value = {k: "" if v is None else v for k, v in value.items()}
            for key, item in value.items():
                if self._strings and not isinstance(item, str):
                    problems.append(f"{path}.{key}: expected a string, got {json_type(item)}")
                    return WRONG
            return MappingProxyType(dict(value))
        return super().decode(value, path, problems, depth)


class _Struct(Kind):
    """A nested struct, by value (``prompt.Scope``) or as a pointer (``*Bounds``)."""

    expected = "an object"

    def __init__(self, go: str, cls: Callable[[], type[GoStruct]]) -> None:
        self.go, self._cls = go, cls  # a callable: ToolError's Cause names its own class

    @property
    def cls(self) -> type[GoStruct]:
        return self._cls()

    def zero(self) -> Any:
        return self.cls()

    def valid(self, value: Any) -> bool:
        return isinstance(value, self.cls)

    def empty(self, value: Any) -> bool:
        return False  # omitempty never drops a struct value

    def encode(self, value: Any) -> Any:
        return value.to_json()

    def decode(self, value: Any, path: str, problems: list[str], depth: int) -> Any:
        if not isinstance(value, dict):
            problems.append(f"{path}: expected an object, got {json_type(value)}")
            return WRONG
        if depth >= MAX_DEPTH:
            problems.append(f"{path}: nested deeper than {MAX_DEPTH} levels")
            return WRONG
        decoded = self.cls.decode_json(value, path, problems, depth + 1)
        return WRONG if decoded is None else decoded


class _Structs(_Struct):
    """A slice of structs; the runtime always makes it non-nil, so it is written ``[]``."""

    expected, nilable = "an array of objects", True

    def zero(self) -> tuple[GoStruct, ...]:
        return ()

    def convert(self, value: Any) -> Any:
        return tuple(value) if isinstance(value, list | tuple) else value

    def valid(self, value: Any) -> bool:
        cls = self.cls
        return isinstance(value, list | tuple) and all(isinstance(v, cls) for v in value)

    def empty(self, value: Any) -> bool:
        return not value

    def encode(self, value: Any) -> list[dict[str, Any]]:
        return [item.to_json() for item in value]

    def decode(self, value: Any, path: str, problems: list[str], depth: int) -> Any:
        if not isinstance(value, list):
            problems.append(f"{path}: expected {self.expected}, got {json_type(value)}")
            return WRONG
        items = []
        for index, item in enumerate(value):
            if item is None:  # Go: null into a struct leaves its zero value
                items.append(self.cls())
                continue
            decoded = super().decode(item, f"{path}[{index}]", problems, depth)
            if decoded is WRONG:
                return WRONG
            items.append(decoded)
        return tuple(items)


STRING = _String()
INT = _Int("int")
INT64 = _Int("int64")
DURATION = _Int("time.Duration")  # nanoseconds
BOOL = _Bool()
BYTES = _Bytes()
RAW = _Raw()
STRINGS = _Strings()
ANY_MAP = _Map("map[string]any", strings=False)
STRING_MAP = _Map("map[string]string", strings=True)


def struct(go: str, cls: Callable[[], type[GoStruct]]) -> Kind:
    return _Struct(go, cls)


def structs(go: str, cls: Callable[[], type[GoStruct]]) -> Kind:
    return _Structs(f"[]{go}", cls)
