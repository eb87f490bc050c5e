"""Dead-letter records: what lands in the dead-letter stream, with its provenance.

A dead-letter entry is an ordinary stream entry (pulse fields ``n`` = ``dead_letter``, ``p`` =
JSON), so any reader, Go pulse readers included, can list it. The original payload is kept
byte-exact: as text when it is valid UTF-8, else base64.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import TypeVar, overload

import attrs
import orjson

from ._envelope import format_timestamp, parse_timestamp
from ._exceptions import DecodeError

__all__ = [
    "DEAD_LETTER_EVENT",
    "DeadLetter",
    "dead_letter_doc",
    "decode_dead_letter",
    "encode_dead_letter",
]

DEAD_LETTER_EVENT = "dead_letter"

_T = TypeVar("_T", str, int)


@attrs.frozen(kw_only=True)
class DeadLetter:
    """An entry taken out of circulation: where it came from, how often it was tried, and why.

    ``origin_stream`` and ``entry_id`` name the original entry, ``group`` and ``consumer`` who gave
    up on it after ``attempts`` deliveries, ``reason`` why, ``event_name`` and ``payload`` the
    original entry's name and bytes. ``letter_id`` is the id of the dead letter itself in the
    dead-letter stream, set on letters read back (:meth:`StreamSubscriber.subscribe_dead_letters`).
    """

    origin_stream: str
    entry_id: str
    group: str | None
    consumer: str | None
    attempts: int
    reason: str
    event_name: str | None
    payload: bytes | None
    dead_lettered_at: datetime = attrs.field(factory=lambda: datetime.now(UTC))
    letter_id: str | None = None


def dead_letter_doc(letter: DeadLetter) -> dict[str, object]:
    """The fields of ``letter`` as :func:`encode_dead_letter` stores them (``letter_id`` aside:
    it is the entry's id, not part of its payload); ``payload`` is text when it is valid UTF-8,
    else ``payload_base64``, and absent when None."""
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
    return doc


def encode_dead_letter(letter: DeadLetter) -> bytes:
    """The JSON document stored as the dead-letter entry's payload."""
    return orjson.dumps(dead_letter_doc(letter))


def decode_dead_letter(data: bytes) -> DeadLetter:
    """Read back a dead-letter payload, as :func:`encode_dead_letter` writes it.

    :raises DecodeError: not a dead-letter document: not a JSON object, a required field
        missing, or a field of the wrong type (``attempts`` an integer, ``payload`` text,
        ``payload_base64`` base64 text, ``group``, ``consumer`` and ``event_name`` text or null,
        the rest text). Never any other exception type.
    """
    try:
        doc = orjson.loads(data)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise DecodeError(f"not a dead-letter record: {exc}") from None
    if type(doc) is not dict:
        raise DecodeError(f"not a dead-letter record: a JSON {type(doc).__name__}, not an object")
    if "payload_base64" in doc:
        encoded = _field(doc, "payload_base64", str)
        try:
            payload: bytes | None = base64.b64decode(encoded, validate=True)
        except ValueError as exc:  # binascii.Error, or non-ASCII text
            raise DecodeError(f"dead-letter field 'payload_base64' is not base64: {exc}") from None
    else:
        text = _field(doc, "payload", str, optional=True)
        # No lone surrogates here: orjson.loads refuses their escapes.
        payload = None if text is None else text.encode()
    return DeadLetter(
        origin_stream=_field(doc, "origin_stream", str),
        entry_id=_field(doc, "entry_id", str),
        group=_field(doc, "group", str, optional=True),
        consumer=_field(doc, "consumer", str, optional=True),
        attempts=_field(doc, "attempts", int),
        reason=_field(doc, "reason", str),
        event_name=_field(doc, "event_name", str, optional=True),
        payload=payload,
        dead_lettered_at=parse_timestamp(_field(doc, "dead_lettered_at", str)),
    )


@overload
def _field(doc: dict[str, object], key: str, kind: type[_T]) -> _T: ...
@overload
def _field(doc: dict[str, object], key: str, kind: type[_T], *, optional: bool) -> _T | None: ...
def _field(
    doc: dict[str, object], key: str, kind: type[_T], *, optional: bool = False
) -> _T | None:
    """``doc[key]``, of exactly type ``kind`` (``True`` is no count of attempts).

    :raises DecodeError: missing (unless optional) or of another type.
    """
    value = doc.get(key)
    if value is None:
        if optional:
            return None
        raise DecodeError(f"not a dead-letter record: no {key!r}")
    if type(value) is not kind:
        raise DecodeError(
            f"dead-letter field {key!r} must be {'an integer' if kind is int else 'a string'}"
            f"{' or null' if optional else ''}, got {type(value).__name__}"
        )
    return value
