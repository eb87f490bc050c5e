"""``streamsink dlq``: list, show, replay and purge the dead letters of a stream (docs/dead-letters.md
has their layout: ordinary entries of ``<stream>:dlq``, event name ``dead_letter``, a JSON payload
naming the origin)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

import attrs

from .._deadletter import DeadLetter, dead_letter_doc, decode_dead_letter
from .._exceptions import DecodeError
from ..backend import Backend, Entry, InspectingBackend, StartPosition, TrimBound
from ._exits import EXIT_FAILED, EXIT_OK, CommandError
from ._ops import opened, operable
from ._output import Output
from ._present import Cell, moment, write_json, write_table
from ._summary import _short
from ._text import escape, safe_message

__all__ = ["Confirm", "ask", "dlq_stream", "run_dlq"]

Confirm = Callable[[str], bool]
"""Asks the operator a yes/no question; True for yes."""

_PAGE = 200


def ask(question: str, *, stdin: TextIO | None = None, stderr: TextIO | None = None) -> bool:
    """Print ``question [y/N]`` on stderr and read the answer from stdin (no answer: no)."""
    err = stderr or sys.stderr
    with contextlib.suppress(BrokenPipeError):
        print(f"{safe_message(question)} [y/N] ", end="", file=err, flush=True)
    answer = (stdin or sys.stdin).readline()
    return answer.strip().lower() in ("y", "yes")


def dlq_stream(stream_id: str, dlq: str | None = None) -> str:
    """The dead-letter stream of ``stream_id``: ``dlq`` when given, the stream itself when it
    already is one (``…:dlq``), else ``<stream>:dlq``."""
    if dlq is not None:
        return dlq
    return stream_id if stream_id.endswith(":dlq") else f"{stream_id}:dlq"


@attrs.frozen
class _Item:
    letter_id: str
    letter: DeadLetter | None  # None: an entry that is no dead letter
    name: str | None


async def _read_letters(backend: Backend, stream_id: str, dlq: str) -> list[_Item]:
    """Every entry of the dead-letter stream now, oldest first, without waiting.

    :raises CommandError: neither the stream nor its dead-letter stream exists.
    """
    info = await _inspecting(backend).stream_info(dlq)
    if info is None:
        if dlq != stream_id and await _inspecting(backend).stream_info(stream_id) is not None:
            return []  # a stream that has no dead letters
        raise CommandError(f"unknown stream {stream_id!r} on {backend.description}")
    items: list[_Item] = []
    if info.last_entry_id is None:
        return items
    reader = await backend.open_reader(dlq, StartPosition.oldest())
    try:
        while True:
            records = await reader.read(_PAGE, 0)
            for record in records:
                try:
                    letter = decode_dead_letter(record.payload or b"")
                    letter = attrs.evolve(letter, letter_id=record.entry_id)
                except DecodeError:
                    letter = None
                items.append(_Item(record.entry_id, letter, record.name))
                if record.entry_id == info.last_entry_id:  # what was there when we looked
                    return items
            if not records:
                return items
    finally:
        await reader.aclose()


def _inspecting(backend: Backend) -> InspectingBackend:
    if not backend.capabilities.stream_info:
        raise CommandError(
            f"backend {backend.description} cannot list dead letters "
            "(it does not declare Capabilities.stream_info)"
        )
    return backend  # type: ignore[return-value]


def _doc(dlq: str, item: _Item) -> dict[str, object]:
    letter = item.letter
    if letter is None:
        return {"dlq": dlq, "letter_id": item.letter_id, "dead_letter": False}
    return {"dlq": dlq, "letter_id": item.letter_id, **dead_letter_doc(letter)}


def _find(items: Sequence[_Item], letter_id: str, dlq: str) -> _Item:
    for item in items:
        if item.letter_id == letter_id:
            return item
    raise CommandError(f"no dead letter {letter_id!r} in {dlq!r}")


async def run_dlq(
    target: str | Backend,
    action: str,
    stream_id: str,
    out: Output,
    *,
    ids: Sequence[str] = (),
    dlq: str | None = None,
    through: str | None = None,
    yes: bool = False,
    confirm: Confirm | None = None,
    json: bool = False,
) -> int:
    """``list`` (the default), ``show`` one letter (``ids[0]``), ``replay`` letters (``ids``,
    default all) to their origin streams as their original entries, ``purge`` letters (through
    ``through``, default all). Replay and purge ask ``confirm`` first unless ``yes``.

    :raises CommandError: an unknown stream or letter, a letter that cannot be replayed, an
        answer other than yes (status 1), or a backend without the capability needed.
    """
    target_dlq = dlq_stream(stream_id, dlq)
    ask_user = confirm or ask
    async with opened(target) as backend:
        items = await _read_letters(backend, stream_id, target_dlq)
        if action == "list":
            _list(out, target_dlq, items, json)
        elif action == "show":
            _show(out, target_dlq, _find(items, ids[0], target_dlq), json)
        elif action == "replay":
            chosen = [_find(items, i, target_dlq) for i in ids] if ids else items
            entries = _replayable(chosen, target_dlq)
            if not entries:
                out.write(escape(f"no dead letters in {target_dlq}") + "\n", "dim")
                return EXIT_OK
            origins = sorted({entry.stream_id for entry in entries})
            question = (
                f"replay {len(entries)} dead letter(s) from {target_dlq} to {', '.join(origins)}?"
            )
            if not yes and not ask_user(question):
                raise CommandError("not confirmed: nothing was replayed", EXIT_FAILED)
            new_ids = await backend.append(entries)
            for item, entry, new_id in zip(chosen, entries, new_ids, strict=True):
                if json:
                    doc = {"letter_id": item.letter_id, "stream": entry.stream_id}
                    write_json(out, {**doc, "entry_id": new_id})
                else:
                    line = f"replayed {item.letter_id} to {entry.stream_id} as {new_id}"
                    out.write(escape(line) + "\n")
            if not json:
                hint = (
                    f"the letters stay in {target_dlq}; remove them with: streamsink dlq purge "
                    f"{target_dlq} --through {chosen[-1].letter_id}"
                )
                out.write(escape(hint) + "\n", "dim")
        else:
            await _purge(backend, out, target_dlq, items, through, yes, ask_user, json)
    return EXIT_OK


def _list(out: Output, dlq: str, items: Sequence[_Item], json: bool) -> None:
    if json:
        for item in items:
            write_json(out, _doc(dlq, item))
        return
    rows: list[list[Cell]] = []
    for item in items:
        letter = item.letter
        if letter is None:
            rows.append([item.letter_id, "(not a dead letter)", None, None, None, None])
            continue
        origin = f"{letter.origin_stream} {letter.entry_id}"
        who = letter.group if letter.consumer is None else f"{letter.group}/{letter.consumer}"
        when = moment(letter.dead_lettered_at)
        rows.append([item.letter_id, origin, who, letter.attempts, _short(letter.reason, 60), when])
    headers = ["letter id", "origin", "group/consumer", "attempts", "reason", "dead-lettered at"]
    write_table(out, headers, rows, empty=f"no dead letters in {dlq}")


def _show(out: Output, dlq: str, item: _Item, json: bool) -> None:
    doc = _doc(dlq, item)
    if json:
        write_json(out, doc)
        return
    width = max(len(key) for key in doc)
    for key, value in doc.items():
        out.write(f"{key:<{width}}  ", "bold")
        out.write(escape("-" if value is None else str(value)) + "\n")


def _replayable(items: Sequence[_Item], dlq: str) -> list[Entry]:
    entries = []
    for item in items:
        letter = item.letter
        if letter is None or letter.event_name is None or letter.payload is None:
            raise CommandError(
                f"{item.letter_id} in {dlq!r} cannot be replayed: "
                + ("not a dead letter" if letter is None else "it holds no original entry")
            )
        entries.append(Entry(letter.origin_stream, letter.event_name, letter.payload))
    return entries


async def _purge(
    backend: Backend,
    out: Output,
    dlq: str,
    items: Sequence[_Item],
    through: str | None,
    yes: bool,
    ask_user: Confirm,
    json: bool,
) -> None:
    trimmer = operable(backend, "purge dead letters")
    if not items:
        out.write(escape(f"no dead letters in {dlq}") + "\n", "dim")
        return
    last = _find(items, through, dlq) if through is not None else items[-1]
    count = items.index(last) + 1
    if not yes and not ask_user(
        f"purge {count} dead letter(s) from {dlq}, through {last.letter_id}?"
    ):
        raise CommandError("not confirmed: nothing was purged", EXIT_FAILED)
    removed = await trimmer.trim_stream(dlq, TrimBound.through(last.letter_id))
    if json:
        write_json(out, {"dlq": dlq, "removed": removed, "through": last.letter_id})
    else:
        out.write(escape(f"purged {removed} dead letter(s) from {dlq}") + "\n")
