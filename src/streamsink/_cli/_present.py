"""How the operator commands print: tables (rich on a terminal, aligned text otherwise), JSON lines
for scripts, durations and times. Every value is escaped here, whatever the command."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import orjson

from ._output import Output, RichOutput
from ._text import escape

__all__ = ["Cell", "duration", "json_line", "moment", "write_json", "write_table"]

Cell = str | int | float | None

_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Cn", "Zl", "Zp"})


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # a surrogate pair, as JSON spells characters beyond the BMP
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def json_line(doc: Mapping[str, object]) -> str:
    r"""One JSON document on one line. orjson escapes C0 controls; the rest a terminal would act
    on (C1 controls, bidi overrides, line separators) is escaped here as ``\uXXXX`` too, so the
    line is valid JSON that decodes to the same values and prints as itself."""
    text = orjson.dumps(doc, default=_default).decode()
    if text.isascii():
        return text
    return "".join(_json_escape(c) if unicodedata.category(c) in _UNSAFE else c for c in text)


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def write_json(out: Output, doc: Mapping[str, object]) -> None:
    out.write(json_line(doc) + "\n")


def _cell(value: Cell) -> str:
    if value is None:
        return "-"
    return escape(str(value))


def write_table(
    out: Output, headers: Sequence[str], rows: Sequence[Sequence[Cell]], *, empty: str
) -> None:
    """``rows`` under ``headers``: a rich table on a rich output, else columns of text; numbers
    right-aligned. ``empty`` is printed instead of a table without rows."""
    if not rows:
        out.write(escape(empty) + "\n", "dim")
        return
    numeric = [
        all(isinstance(row[i], int | float | None) for row in rows) for i in range(len(headers))
    ]
    cells = [[_cell(value) for value in row] for row in rows]
    if isinstance(out, RichOutput):
        out.table(headers, cells, numeric)
        return
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip() + "\n"

    out.write(line([h.upper() for h in headers]), "bold")
    for row in cells:
        out.write(line(row))


def duration(seconds: float | None, *, infinite: str = "never") -> str | None:
    """``12.3s``, ``5m07s``, ``2h03m``, ``3d04h``; ``infinite`` for an infinite time."""
    if seconds is None:
        return None
    if math.isinf(seconds):
        return infinite
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def moment(when: datetime | None) -> str | None:
    """A UTC time to the millisecond, as the tables show it."""
    if when is None:
        return None
    return f"{when.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}"[:-3]


def since(idle: float, now: datetime) -> datetime | None:
    """The time ``idle`` seconds before ``now`` (None for an infinite idle time)."""
    return None if math.isinf(idle) else now - timedelta(seconds=idle)


def seconds(value: float | None) -> float | None:
    """A duration for JSON: seconds, rounded to the millisecond; None when unknown or infinite."""
    return None if value is None or math.isinf(value) else round(value, 3)
