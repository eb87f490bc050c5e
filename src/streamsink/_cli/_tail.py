"""``streamsink tail``: follow a stream, printing each event (and dead letter) as it arrives."""

from __future__ import annotations

from datetime import datetime
from typing import TextIO

import orjson

from .._consuming import Delivery
from .._deadletter import DEAD_LETTER_EVENT, DeadLetter, decode_dead_letter, encode_dead_letter
from .._exceptions import DecodeError, StreamsinkError
from .._runtime import connect
from ..backend import Backend, StartPosition
from ._exits import (
    EXIT_OK,
)
from ._output import _STYLES, _TYPE_WIDTH, Output
from ._present import write_json
from ._summary import (
    _short,
    summarize,
)
from ._text import (
    _warn,
    escape,
)

# -- tail ---------------------------------------------------------------------------------------


async def run_tail(
    target: str | Backend,
    stream_id: str,
    out: Output,
    *,
    start: StartPosition | None = None,
    limit: int | None = None,
    errors: TextIO | None = None,
    until: str | None = None,
    group: str | None = None,
    json: bool = False,
) -> int:
    """Print the entries of ``stream_id`` as a fan-out reader (no group: nothing is acknowledged
    or left behind) until interrupted, until ``limit`` entries were printed, until an event of
    type ``until`` was printed, or until ``out`` is broken (its reader went away). With
    ``group``, read as a consumer of that group instead, acknowledging each entry once printed
    (the group's other consumers do not get it).

    One line per entry, every value from the entry escaped: events as summaries, dead letters
    (a ``:dlq`` stream) with their origin, group, consumer, attempts, reason and a payload
    preview; with ``json``, one JSON document per entry. Entries that are neither get a warning
    on ``errors`` (default stderr) instead.

    :raises StreamsinkError: the backend could not be opened or used.
    """

    def on_error(error: StreamsinkError) -> None:
        _warn(errors, str(error))

    show = _print_json if json else _print_entry
    async with connect(target) as streams:
        subscriber = streams.new_subscriber(group=group, on_error=on_error)
        count = 0
        # Manual mode for what it hands over: the entry id with the event, and the raw payload of
        # an entry that is not an envelope, to read as a dead letter. Fan-out deliveries need no
        # settling; a group's are acknowledged once printed.
        async with subscriber.subscribe_manual(stream_id, start=start) as deliveries:
            async for delivery in deliveries:
                shown = show(out, delivery)
                if group is not None:
                    await delivery.ack()
                if not shown:
                    _warn(
                        errors,
                        f"undecodable entry {stream_id}/{delivery.entry_id}: "
                        f"{delivery.decode_error}",
                    )
                    continue
                count += 1
                event = delivery.event
                if until is not None and event is not None and event.type == until:
                    break
                if out.broken or (limit is not None and count >= limit):
                    break
    return EXIT_OK


def _print_json(out: Output, delivery: Delivery) -> bool:
    """One JSON line for ``delivery``; False when it is neither an event nor a letter."""
    event = delivery.event
    if event is not None:
        write_json(
            out,
            {
                "entry_id": delivery.entry_id,
                "stream": getattr(event, "stream_id", None),
                "type": event.type,
                "run_id": event.run_id,
                "session_id": event.session_id,
                "event_key": event.event_key,
                "timestamp": getattr(event, "timestamp", None),
                "payload": event.payload,
            },
        )
        return True
    try:
        letter = decode_dead_letter(delivery.raw_payload)
    except DecodeError:
        return False
    doc = orjson.loads(encode_dead_letter(letter))
    write_json(out, {"entry_id": delivery.entry_id, "type": DEAD_LETTER_EVENT, "letter": doc})
    return True


def _stamp(when: datetime | None) -> str:
    return f"{when:%H:%M:%S.%f}"[:-3] if when else "--:--:--.---"


def _print_entry(out: Output, delivery: Delivery) -> bool:
    """Print one tail line for ``delivery``; False when it is neither an event nor a letter."""
    entry = escape(delivery.entry_id)
    event = delivery.event
    if event is not None:
        style = _STYLES.get(event.type)
        out.write(f"{_stamp(getattr(event, 'timestamp', None))}  {entry}  ", "dim")
        out.write(f"{escape(event.type):<{_TYPE_WIDTH}}  ", style)
        out.write(f"{escape(event.run_id)}  {summarize(event)}\n", style)
        return True
    try:
        letter = decode_dead_letter(delivery.raw_payload)
    except DecodeError:
        return False
    out.write(f"{_stamp(letter.dead_lettered_at)}  {entry}  ", "dim")
    out.write(f"{DEAD_LETTER_EVENT:<{_TYPE_WIDTH}}  ", "yellow")
    out.write(_letter_summary(letter) + "\n", "yellow")
    return True


def _letter_summary(letter: DeadLetter) -> str:
    """One escaped line about a dead letter: where it came from, who gave up on it after how many
    attempts and why, and the start of the original payload."""
    where = f"group {letter.group}" if letter.group else "no group"
    if letter.consumer:
        where += f", consumer {letter.consumer}"
    attempts = f"{letter.attempts} attempt{'' if letter.attempts == 1 else 's'}"
    if letter.payload is None:
        preview = "no payload"
    else:
        text = letter.payload.decode("utf-8", errors="replace")
        preview = f"payload {letter.event_name or '?'}: {_short(text, 80)}"
    return escape(
        f"{letter.origin_stream} {letter.entry_id} ({where}, {attempts}): {letter.reason}; "
        f"{preview}"
    )
