"""Dead-letter records: what lands in the dead-letter stream, with its provenance.

A dead-letter entry is an ordinary stream entry (pulse fields ``n`` = ``dead_letter``, ``p`` =
JSON), so any reader, Go pulse readers included, can list it. The original payload is kept
byte-exact: as text when it is valid UTF-8, else base64.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import attrs
import orjson

from ._envelope import format_timestamp, parse_timestamp
from ._exceptions import DecodeError

__all__ = ["DEAD_LETTER_EVENT", "DeadLetter", "decode_dead_letter", "encode_dead_letter"]

DEAD_LETTER_EVENT = "dead_letter"


@attrs.frozen(kw_only=True)
class DeadLetter:
    """An entry taken out of circulation: where it came from, how often it was tried, and why."""

    origin_stream: str
    entry_id: str
    group: str | None
    consumer: str | None
    attempts: int
    reason: str
    event_name: str | None
    payload: bytes | None
    dead_lettered_at: datetime = attrs.field(factory=lambda: datetime.now(UTC))


def encode_dead_letter(letter: DeadLetter) -> bytes:
    """The JSON document stored as the dead-letter entry's payload."""
    doc: dict[str, object] = {
        "origin_stream": letter.origin_stream,
        "entry_id": letter.entry_id,
        "group": letter.group,
        "consumer": letter.consumer,
        "attempts": letter.attempts,
        "reason": letter.reason,
        "event_name": letter.event_name,
        "dead_lettered_at": format_timestamp(letter.dead_lettered_at),
    }
    if letter.payload is not None:
        try:
            doc["payload"] = letter.payload.decode()
        except UnicodeDecodeError:
            doc["payload_base64"] = base64.b64encode(letter.payload).decode()
    return orjson.dumps(doc)


def decode_dead_letter(data: bytes) -> DeadLetter:
    """Read back a dead-letter payload.

    :raises DecodeError: not a dead-letter document.
    """
    try:
        doc = orjson.loads(data)
        if not isinstance(doc, dict):
            raise TypeError("not an object")
        if "payload_base64" in doc:
            payload: bytes | None = base64.b64decode(doc["payload_base64"], validate=True)
        elif doc.get("payload") is not None:
            payload = str(doc["payload"]).encode()
        else:
            payload = None
        return DeadLetter(
            origin_stream=str(doc["origin_stream"]),
            entry_id=str(doc["entry_id"]),
            group=doc.get("group"),
            consumer=doc.get("consumer"),
            attempts=int(doc["attempts"]),
            reason=str(doc["reason"]),
            event_name=doc.get("event_name"),
            payload=payload,
            dead_lettered_at=parse_timestamp(doc["dead_lettered_at"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DecodeError(f"not a dead-letter record: {exc!r}") from None
