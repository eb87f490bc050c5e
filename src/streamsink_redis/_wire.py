"""The pulse wire format: stream keys, XADD arguments, and parsing of raw Redis replies.

Replies are parsed here from their raw RESP2 or RESP3 shapes (the backend's clients run without
redis-py's response callbacks), so the backend does not depend on redis-py's reply conventions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from streamsink import ConfigurationError, validate_name
from streamsink.backend import Entry, Record, StartPosition
from streamsink.backend.redis_ids import start_after_id

__all__ = [
    "FIELD_IDEMPOTENCY",
    "FIELD_NAME",
    "FIELD_PAYLOAD",
    "FIELD_TOPIC",
    "autoclaim_reply",
    "check_name",
    "delivery_counts",
    "entries_of_read",
    "last_generated_id",
    "record",
    "records",
    "records_of_read",
    "start_id",
    "text",
    "xadd_args",
]

FIELD_NAME = b"n"
FIELD_PAYLOAD = b"p"
FIELD_TOPIC = b"t"
FIELD_IDEMPOTENCY = b"i"
"""streamsink's own field, written after pulse's: a value unique to the producer and entry, by
which a retried append finds an entry its lost attempt already wrote (see :mod:`._append`).
pulse ignores fields it does not know: its readers and sinks look up ``n``, ``p`` and ``t`` by
name in the message's values (``decodeRedisEvent`` in goa.design/pulse ``streaming/reader.go``;
``streamEvents`` in older releases), so Go consumers read these entries as before."""

RawEntry = tuple[str, "dict[bytes, bytes] | None"]
"""An entry as read: its id and its fields (None when the entry was deleted)."""


def check_name(kind: str, value: object) -> str:
    """Validate a group or consumer name as every backend does (:func:`streamsink.validate_name`:
    a non-empty string without lone surrogates, which Redis could not be sent).

    :raises ConfigurationError: anything else.
    """
    return validate_name(kind, value)


def xadd_args(key: str, entry: Entry, maxlen: int, idempotency: bytes | None = None) -> list[Any]:
    """``XADD key [MAXLEN ~ n] * n <name> p <payload> [t <topic>] [i <idempotency>]``: pulse's
    layout, then streamsink's idempotency field when a value is given (the last argument).

    :raises ConfigurationError: an entry with an empty or non-string name, a payload that is not
        bytes, or a topic that is not a string.
    """
    if not isinstance(entry.name, str) or not entry.name:
        raise ConfigurationError(f"entry name must be a non-empty string, got {entry.name!r}")
    if not isinstance(entry.payload, bytes | bytearray | memoryview):
        raise ConfigurationError(f"entry payload must be bytes, got {type(entry.payload).__name__}")
    if entry.topic is not None and not isinstance(entry.topic, str):
        raise ConfigurationError(f"entry topic must be a string or None, got {entry.topic!r}")
    args: list[Any] = ["XADD", key]
    if maxlen > 0:
        args += ["MAXLEN", "~", str(maxlen)]
    args += ["*", FIELD_NAME, entry.name, FIELD_PAYLOAD, bytes(entry.payload)]
    if entry.topic is not None:
        args += [FIELD_TOPIC, entry.topic]
    if idempotency is not None:
        args.append(FIELD_IDEMPOTENCY)
        args.append(idempotency)
    return args


def start_id(start: StartPosition, *, newest: str = "$") -> str:
    """The Redis id a group or cursor starts after: ``$`` (or ``newest``), ``0-0``, an id, or the
    id just before a time (inclusive start); see :func:`start_after_id`."""
    return start_after_id(start, newest)


def text(value: Any) -> str:
    """Bytes from Redis as text (ids, cursors, names)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _fields(raw: Any) -> dict[bytes, bytes] | None:
    if raw is None:
        return None
    if isinstance(raw, Mapping):
        items = list(raw.items())
    else:
        flat = list(raw)
        items = list(zip(flat[0::2], flat[1::2], strict=False))
    return {_as_bytes(k): _as_bytes(v) for k, v in items}


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return str(value).encode()


def _entries(raw: Any) -> list[RawEntry]:
    result: list[RawEntry] = []
    for item in raw or ():
        if item is None:
            continue
        result.append((text(item[0]), _fields(item[1] if len(item) > 1 else None)))
    return result


def entries_of_read(raw: Any) -> list[RawEntry]:
    """Entries of an XREAD/XREADGROUP reply on one stream (nil, RESP2 list or RESP3 map)."""
    if not raw:
        return []
    if isinstance(raw, Mapping):
        return [entry for value in raw.values() for entry in _entries(value)]
    return [entry for pair in raw for entry in _entries(pair[1])]


# A Record straight from its tuple of fields: its NamedTuple constructor is a Python function
# around the same call, ~230 ns against ~110 ns (one per entry read,
# see benchmarks/NOTES.md "Session 4").
_record = tuple.__new__


def records_of_read(raw: Any) -> list[Record]:
    """``records(entries_of_read(raw))`` in one pass, for the hot path (``XREADGROUP ... >``).

    Entries laid out as pulse and streamsink write them (``n <name> p <payload>``, and
    streamsink's ``i <value>`` after them) become records directly; any other shape goes through
    :func:`record`, as :func:`records` does.
    """
    if not raw:
        return []
    batches = raw.values() if isinstance(raw, Mapping) else [pair[1] for pair in raw]
    result: list[Record] = []
    append = result.append
    for batch in batches:
        for item in batch or ():
            if item is None or len(item) < 2 or item[1] is None:
                continue  # deleted entry
            raw_id, flat = item[0], item[1]
            entry_id = raw_id.decode("utf-8", "replace") if type(raw_id) is bytes else text(raw_id)
            if (
                type(flat) is list
                and (((size := len(flat)) == 6 and flat[4] == FIELD_IDEMPOTENCY) or size == 4)
                and flat[0] == FIELD_NAME
                and flat[2] == FIELD_PAYLOAD
                and type(flat[1]) is bytes
                and type(flat[3]) is bytes
            ):
                # What streamsink (n <name> p <payload> i <value>) and pulse (n <name> p
                # <payload>) write, in that order.
                try:
                    append(_record(Record, (entry_id, flat[1].decode("utf-8"), flat[3], None, 1)))
                except UnicodeDecodeError:
                    append(Record(entry_id, None, flat[3], None, 1))
                continue
            # Any other layout (a topic, other fields, another order, RESP3 maps).
            append(record(entry_id, _fields(flat) or {}))
    return result


def autoclaim_reply(raw: Any) -> tuple[str, list[RawEntry], list[str]]:
    """``(next cursor, claimed entries, ids deleted from the PEL)`` of an XAUTOCLAIM reply."""
    cursor = text(raw[0])
    claimed = _entries(raw[1])
    deleted = [text(i) for i in raw[2]] if len(raw) > 2 and raw[2] else []
    return cursor, claimed, deleted


def delivery_counts(raw: Any) -> dict[str, int]:
    """``{id: times delivered}`` from an XPENDING range reply."""
    return {text(row[0]): int(row[3]) for row in raw or ()}


def last_generated_id(raw: Any) -> str:
    """``last-generated-id`` from an XINFO STREAM reply (RESP2 flat list or RESP3 map)."""
    info = (
        raw
        if isinstance(raw, Mapping)
        else dict(zip(list(raw)[0::2], list(raw)[1::2], strict=False))
    )
    for key, value in info.items():
        if text(key) == "last-generated-id":
            return text(value)
    raise ConfigurationError("XINFO STREAM reply has no last-generated-id; is this Redis >= 5?")


def record(entry_id: str, fields: dict[bytes, bytes], delivery_count: int = 1) -> Record:
    """A :class:`Record` from an entry's fields; a missing or non-UTF-8 name is None."""
    name_raw = fields.get(FIELD_NAME)
    name: str | None = None
    if name_raw is not None:
        try:
            name = name_raw.decode("utf-8")
        except UnicodeDecodeError:
            name = None
    topic_raw = fields.get(FIELD_TOPIC)
    return Record(
        entry_id=entry_id,
        name=name,
        payload=fields.get(FIELD_PAYLOAD),
        topic=None if topic_raw is None else topic_raw.decode("utf-8", "replace"),
        delivery_count=delivery_count,
    )


def records(
    entries: Sequence[RawEntry], counts: Mapping[str, int] | None = None, default: int = 1
) -> list[Record]:
    """Records for the live entries (deleted ones skipped), with delivery counts from ``counts``
    (``default`` when absent)."""
    return [
        record(entry_id, fields, (counts or {}).get(entry_id, default))
        for entry_id, fields in entries
        if fields is not None
    ]
