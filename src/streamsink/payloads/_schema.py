"""How a Go struct travels as JSON: field metadata, the encoder and the lenient decoder.

Every payload class is a frozen attrs class whose Go fields carry a :class:`GoField` in their
metadata (JSON key, Go type, ``omitempty``, nil-ability). One description drives three things:
the builders' validation, :meth:`GoStruct.to_json` (what Go's ``encoding/json`` writes) and the
decoder (what Go's ``json.Unmarshal`` reads, except that it reports a wrong shape instead of
failing).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

import attrs

from ._kinds import EMPTY, RAW, WRONG, Kind, json_type

__all__ = ["GoField", "GoStruct", "go", "go_fields", "unknown_last"]

_META = "streamsink.go"

S = TypeVar("S", bound="GoStruct")


# -- fields ---------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class GoField:
    """How one attribute travels: its JSON key, its Go type and Go's rules for it.

    ``nullable`` fields are Go pointers (and nil-able slices and maps written without
    ``omitempty``): Python ``None`` is Go's nil, written ``null`` (or left out with
    ``omitempty``). ``omitempty`` leaves out ``""``, ``0``, ``False`` and empty lists and maps, but
    never a non-nil pointer's value.
    """

    key: str
    kind: Kind
    omitempty: bool = False
    nullable: bool = False

    @property
    def go_type(self) -> str:
        # A nullable field of a type that is not nil-able itself is a Go pointer.
        return ("*" if self.nullable and not self.kind.nilable else "") + self.kind.go

    def zero(self) -> Any:
        return None if self.nullable else self.kind.zero()


def go(key: str, kind: Kind, *, omitempty: bool = False, nullable: bool = False) -> Any:
    """An attrs field for the Go struct field written as ``key``; its default is Go's zero value.

    Typed ``Any`` so that the annotation in the class body says what the attribute holds.
    """
    meta = GoField(key=key, kind=kind, omitempty=omitempty, nullable=nullable or kind is RAW)
    return attrs.field(
        default=attrs.Factory(meta.zero),
        converter=kind.convert,
        repr=_shown,
        validator=functools.partial(_validate, meta),
        metadata={_META: meta},
    )


def _shown(value: Any) -> str:
    """A field's repr: read-only mappings as the dicts they wrap."""
    return repr(dict(value)) if isinstance(value, MappingProxyType) else repr(value)


def _validate(meta: GoField, instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None and meta.nullable:
        return
    if not meta.kind.valid(value):
        owner = type(instance).__name__
        reason = meta.kind.out_of_range(value)
        if reason is not None:
            raise ValueError(f"{owner}.{attribute.name}: {reason}")
        raise TypeError(
            f"{owner}.{attribute.name}: expected {meta.kind.expected} ({meta.go_type}), "
            f"got {type(value).__name__}"
        )


def unknown_last(cls: type, fields: list[attrs.Attribute[Any]]) -> list[attrs.Attribute[Any]]:
    """The ``field_transformer`` of every Go struct class: ``unknown_fields`` (inherited, so
    first) goes last, in ``repr`` and ``attrs.fields``."""
    return [f for f in fields if f.name != "unknown_fields"] + [
        f for f in fields if f.name == "unknown_fields"
    ]


_Spec = tuple[str, GoField]  # (attribute name, how it travels)
_FIELDS: dict[type, tuple[_Spec, ...]] = {}
_LOOKUPS: dict[type, tuple[dict[str, _Spec], dict[str, _Spec]]] = {}


def go_fields(cls: type[GoStruct]) -> tuple[tuple[str, GoField], ...]:
    """(attribute name, :class:`GoField`) of ``cls``'s Go fields, in Go's declaration order."""
    found = _FIELDS.get(cls)
    if found is None:
        found = tuple((a.name, a.metadata[_META]) for a in attrs.fields(cls) if _META in a.metadata)
        _FIELDS[cls] = found
    return found


def _lookup(cls: type[GoStruct]) -> tuple[dict[str, _Spec], dict[str, _Spec]]:
    """JSON key -> field, exactly and ASCII-case-folded (Go's decoder matches keys both ways)."""
    found = _LOOKUPS.get(cls)
    if found is None:
        exact = {meta.key: (name, meta) for name, meta in go_fields(cls)}
        found = exact, {key.lower(): spec for key, spec in exact.items()}
        _LOOKUPS[cls] = found
    return found


def _frozen_unknown(value: Any) -> Any:
    return MappingProxyType(dict(value)) if isinstance(value, Mapping) else value


def _validate_unknown(instance: GoStruct, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Mapping):
        raise TypeError(f"unknown_fields must be a mapping, got {type(value).__name__}")
    exact, folded = _lookup(type(instance))
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"unknown_fields keys must be strings, got {type(key).__name__}")
        if key in exact or (key.isascii() and key.lower() in folded):
            # Go would read it into that field: it is not unknown.
            raise ValueError(f"unknown_fields: {key!r} is a field of {type(instance).__name__}")


@attrs.frozen(kw_only=True)
class GoStruct:
    """A Go struct as JSON: the fields Go declares, then the keys it does not know.

    ``unknown_fields`` keeps, in their order, the keys of a received object that match no field
    (a newer producer's fields); :meth:`to_json` writes them after the known ones. Objects you
    build have none unless you give them.
    """

    unknown_fields: Mapping[str, Any] = attrs.field(
        default=EMPTY, converter=_frozen_unknown, validator=_validate_unknown, repr=_shown
    )

    #: Set on each class: its name in Go, for docs and messages.
    GO_NAME: ClassVar[str] = ""

    def to_json(self, *, include_unknown: bool = True) -> dict[str, Any]:
        """The JSON object Go's ``encoding/json`` writes for this struct, as a dict in Go's key
        order (struct fields in declaration order, ``omitempty`` applied, map keys sorted,
        ``[]byte`` as base64), then ``unknown_fields`` unless ``include_unknown`` is False.

        :raises TypeError: a value in a map or raw JSON field that JSON cannot hold.
        """
        out: dict[str, Any] = {}
        for name, meta in go_fields(type(self)):
            value = getattr(self, name)
            if value is None:
                if not meta.omitempty:
                    out[meta.key] = None
            elif not (meta.omitempty and not meta.nullable and meta.kind.empty(value)):
                out[meta.key] = meta.kind.encode(value)
        if include_unknown and self.unknown_fields:
            out.update(self.unknown_fields)
        return out

    @classmethod
    def decode_json(
        cls: type[S], doc: dict[Any, Any], path: str, problems: list[str], depth: int
    ) -> S | None:
        """``doc`` read as Go's ``json.Unmarshal`` would: missing keys and nulls give zero values,
        keys match case-insensitively; None (with ``problems`` appended) for a value of the wrong
        JSON type anywhere inside."""
        exact, folded = _lookup(cls)
        values: dict[str, Any] = {}
        unknown: dict[str, Any] = {}
        good = True
        for key, value in doc.items():
            if type(key) is not str:  # only a locally built dict can have one
                problems.append(f"{path or 'payload'}: a key is {json_type(key)}, not a string")
                good = False
                continue
            spec = exact.get(key)
            if spec is None and key.isascii():
                spec = folded.get(key.lower())
            if spec is None:
                unknown[key] = value
                continue
            name, meta = spec
            if value is None:
                # Go: null sets pointers, slices and maps to nil and leaves anything else be.
                if meta.nullable or meta.kind.nilable:
                    values[name] = meta.zero()
                continue
            decoded = meta.kind.decode(
                value, f"{path}.{meta.key}" if path else meta.key, problems, depth
            )
            if decoded is WRONG:
                good = False
            else:
                values[name] = decoded
        return cls(**values, unknown_fields=unknown) if good else None
