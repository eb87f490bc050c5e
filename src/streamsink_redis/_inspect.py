"""``stream_info`` of the Redis backend: ``XINFO STREAM`` (and, for a resume id, ``XRANGE id id``)
in one pipelined round trip, read as a :class:`streamsink.backend.StreamInfo`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as rex

from streamsink.backend import ResumeState, StreamInfo
from streamsink.backend.redis_ids import parse_entry_id

from . import _wire as wire
from ._errors import map_redis_errors, translate

__all__ = ["stream_info"]

_NOTHING = (0, 0)


async def stream_info(
    client: aioredis.Redis, where: str, key: str, stream_id: str, resume_id: str | None
) -> StreamInfo | None:
    """The stream at ``key`` now, None when the key does not exist.

    :raises ConfigurationError: ``resume_id`` is not a ``<ms>-<seq>`` id (checked before any
        command is sent).
    :raises BackendUnavailableError: the server cannot be reached.
    """
    resume = None if resume_id is None else parse_entry_id(resume_id)
    with map_redis_errors("read", where):
        pipe = client.pipeline(transaction=False)
        pipe.execute_command("XINFO", "STREAM", key)
        if resume is not None:
            at = f"{resume[0]}-{resume[1]}"
            pipe.execute_command("XRANGE", key, at, at, "COUNT", 1)
        replies = await pipe.execute(raise_on_error=False)
    info = replies[0]
    if isinstance(info, rex.ResponseError):
        if "no such key" in str(info).lower():
            return None
        raise translate(info, "read", where)
    if resume is not None and isinstance(replies[1], Exception):
        raise translate(replies[1], "read", where)
    fields = _fields(info)
    length = int(fields.get("length", 0))
    first = _entry_id(fields.get("first-entry"))
    newest = _entry_id(fields.get("last-entry"))
    last = _id_or_none(fields.get("last-generated-id"))
    added = fields.get("entries-added")  # Redis >= 7
    entries_added = None if added is None else int(added)
    deleted = _id_or_none(fields.get("max-deleted-entry-id"))  # Redis >= 7; XDEL only
    state = None
    if resume is not None:
        state = _classify(
            resume,
            first=first,
            last=last,
            held=bool(replies[1]),
            removed=None if entries_added is None else entries_added - length,
            deleted=deleted,
        )
    return StreamInfo(
        stream_id=stream_id,
        length=length,
        first_id=first,
        last_entry_id=newest,
        last_id=last,
        entries_added=entries_added,
        trimmed_through=deleted,
        resume=state,
    )


def _classify(
    resume: tuple[int, int],
    *,
    first: str | None,
    last: str | None,
    held: bool,
    removed: int | None,
    deleted: str | None,
) -> ResumeState:
    end = _NOTHING if last is None else parse_entry_id(last)
    if resume == end:
        return ResumeState.CONTINUES
    if resume > end:
        return ResumeState.AFTER_LAST
    if first is not None and resume >= parse_entry_id(first):
        return ResumeState.CONTINUES if held else ResumeState.NOT_AN_ENTRY
    # Before the first entry held. Redis keeps no trimmed-through id (max-deleted-entry-id moves
    # only on XDEL): entries removed from the head of this stream may have included the id.
    if deleted is not None and parse_entry_id(deleted) >= resume:
        return ResumeState.TRIMMED
    if removed is None or removed > 0:  # trimmed (or a server too old to say): not an epoch
        return ResumeState.TRIMMED
    return ResumeState.BEFORE_FIRST


def _fields(raw: Any) -> dict[str, Any]:
    """An ``XINFO STREAM`` reply (RESP2 flat list or RESP3 map) by field name."""
    if isinstance(raw, Mapping):
        return {wire.text(k): v for k, v in raw.items()}
    flat = list(raw)
    return {wire.text(k): v for k, v in zip(flat[0::2], flat[1::2], strict=False)}


def _entry_id(entry: Any) -> str | None:
    return None if not entry else wire.text(entry[0])


def _id_or_none(raw: Any) -> str | None:
    if raw is None:
        return None
    text = wire.text(raw)
    return None if parse_entry_id(text) == _NOTHING else text
