"""Where the command prints: plain text, or colour through rich on a terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Protocol, TextIO

from .._events import EventType

_TYPE_WIDTH = len(EventType.ASSISTANT_REPLY)  # longer types overflow; most fit

_STYLES: dict[str, str] = {
    EventType.TOOL_START: "cyan",
    EventType.TOOL_END: "cyan",
    EventType.ASSISTANT_REPLY: "bold",
    EventType.PLANNER_THOUGHT: "dim",
    EventType.USAGE: "magenta",
    EventType.WORKFLOW: "green",
    EventType.RUN_STREAM_END: "green",
}


# -- output -------------------------------------------------------------------------------------


class Output(Protocol):
    """Where commands write: plain text, or colour through rich on a terminal.

    ``write`` never raises for a closed reader (a broken pipe): it sets ``broken`` and drops this
    and every later write, so a command can finish its work (the demo its run) or stop (tail).
    """

    @property
    def broken(self) -> bool: ...

    def write(self, text: str, style: str | None = None) -> None: ...


class PlainOutput:
    """Plain text to a stream (stdout by default), flushed at every write so output is live."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self.broken = False

    def write(self, text: str, style: str | None = None) -> None:
        if self.broken:
            return
        try:
            self._stream.write(text)
            self._stream.flush()
        except BrokenPipeError:
            self.broken = True


class RichOutput:
    """Coloured text through rich (no markup or highlighting: payload text is printed as is)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        from rich.console import Console

        self._console = Console(
            file=stream if stream is not None else sys.stdout,
            markup=False,
            highlight=False,
            emoji=False,
            soft_wrap=True,
            force_terminal=True,
        )
        self.broken = False

    def write(self, text: str, style: str | None = None) -> None:
        if self.broken:
            return
        try:
            self._console.print(text, style=style, end="")
            self._console.file.flush()
        except BrokenPipeError:
            self.broken = True

    def table(
        self, headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]
    ) -> None:
        """A rich table of escaped cells (as :class:`rich.text.Text`: never read as markup)."""
        if self.broken:
            return
        from rich import box
        from rich.table import Table
        from rich.text import Text

        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for header, flush_right in zip(headers, right, strict=True):
            # fold, not ellipsis: an id cut short is no id to copy into the next command
            table.add_column(
                header.upper(), justify="right" if flush_right else "left", overflow="fold"
            )
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))
        try:
            self._console.print(table)
            self._console.file.flush()
        except BrokenPipeError:
            self.broken = True


def make_output(color: str = "auto", stream: TextIO | None = None) -> Output:
    """``PlainOutput`` unless colour is asked for (``always``, or ``auto`` on a terminal without
    ``NO_COLOR``) and rich is importable."""
    target = stream if stream is not None else sys.stdout
    if color == "never" or (
        color == "auto" and (os.environ.get("NO_COLOR") or not _isatty(target))
    ):
        return PlainOutput(target)
    try:
        return RichOutput(target)
    except ImportError:
        return PlainOutput(target)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
