"""The operator commands on streams and groups: ``streams``, ``groups``, ``pending``,
``consumers`` (with ``--reap-idle``), ``trim`` and ``send``, on any backend that declares
``Capabilities.operations`` (the :class:`~streamsink.backend.OperableBackend` extension)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import cast

import orjson

from .._events import StreamEvent
from .._plugins import open_backend
from .._sink import SinkOptions, StreamSink
from ..backend import Backend, OperableBackend, TimedBackend, TrimBound
from ._exits import EXIT_OK, CommandError
from ._output import Output
from ._present import (
    Cell,
    duration,
    moment,
    seconds,
    since,
    write_json,
    write_table,
)
from ._text import escape

__all__ = [
    "operable",
    "opened",
    "run_consumers",
    "run_groups",
    "run_pending",
    "run_send",
    "run_streams",
    "run_trim",
    "stream_or_fail",
]


@asynccontextmanager
async def opened(target: str | Backend) -> AsyncIterator[Backend]:
    """The backend a URL names (closed on leaving), or a backend given (left open)."""
    if not isinstance(target, str):
        yield target
        return
    backend = await open_backend(target)
    try:
        yield backend
    finally:
        await backend.aclose()


def operable(backend: Backend, what: str) -> OperableBackend:
    """``backend`` as an :class:`OperableBackend`.

    :raises CommandError: it does not declare ``Capabilities.operations`` (and ``stream_info``).
    """
    capabilities = backend.capabilities
    if not (capabilities.operations and capabilities.stream_info):
        raise CommandError(
            f"backend {backend.description} cannot {what} "
            "(it does not declare Capabilities.operations)"
        )
    return cast(OperableBackend, backend)


async def stream_or_fail(backend: OperableBackend, stream_id: str) -> None:
    """:raises CommandError: the stream does not exist."""
    if await backend.stream_info(stream_id) is None:
        raise CommandError(f"unknown stream {stream_id!r} on {backend.description}")


async def _time(backend: Backend, stream_id: str, entry_id: str | None) -> datetime | None:
    if entry_id is None or not backend.capabilities.entry_times:
        return None
    return await cast(TimedBackend, backend).entry_time(stream_id, entry_id)


async def run_streams(target: str | Backend, out: Output, *, json: bool = False) -> int:
    """List every stream: length, entries ever added, first and last entries with their times."""
    async with opened(target) as plain:
        backend = operable(plain, "list streams")
        rows: list[list[Cell]] = []
        for stream_id in await backend.list_streams():
            info = await backend.stream_info(stream_id)
            if info is None:  # destroyed since it was listed
                continue
            first = await _time(backend, stream_id, info.first_id)
            last = await _time(backend, stream_id, info.last_entry_id)
            if json:
                write_json(
                    out,
                    {
                        "stream": stream_id,
                        "length": info.length,
                        "entries_added": info.entries_added,
                        "first_id": info.first_id,
                        "first_time": first,
                        "last_id": info.last_entry_id,
                        "last_time": last,
                    },
                )
            else:
                row: list[Cell] = [stream_id, info.length, info.first_id, moment(first)]
                rows.append([*row, info.last_entry_id, moment(last)])
        if not json:
            headers = ["stream", "length", "first id", "first time", "last id", "last time"]
            write_table(out, headers, rows, empty=f"no streams on {backend.description}")
    return EXIT_OK


async def run_groups(
    target: str | Backend, stream_id: str, out: Output, *, json: bool = False
) -> int:
    """List the groups of a stream: consumers, pending, last delivered id, lag and idle time."""
    async with opened(target) as plain:
        backend = operable(plain, "list groups")
        groups = await backend.list_groups(stream_id)
        if groups is None:
            raise CommandError(f"unknown stream {stream_id!r} on {backend.description}")
        rows: list[list[Cell]] = []
        for group in groups:
            if json:
                write_json(
                    out,
                    {
                        "stream": stream_id,
                        "group": group.name,
                        "consumers": group.consumers,
                        "pending": group.pending,
                        "last_delivered_id": group.last_delivered_id,
                        "lag": group.lag,
                        "idle": seconds(group.idle),
                    },
                )
                continue
            row: list[Cell] = [group.name, group.consumers, group.pending]
            rows.append([*row, group.last_delivered_id, group.lag, duration(group.idle)])
        if not json:
            headers = ["group", "consumers", "pending", "last delivered", "lag", "idle"]
            write_table(out, headers, rows, empty=f"no groups on {stream_id}")
    return EXIT_OK


async def run_pending(
    target: str | Backend,
    stream_id: str,
    group: str,
    out: Output,
    *,
    consumer: str | None = None,
    after: str | None = None,
    limit: int = 100,
    json: bool = False,
) -> int:
    """List up to ``limit`` pending entries of a group: who holds each, since when, how many
    deliveries."""
    async with opened(target) as plain:
        backend = operable(plain, "list pending entries")
        page = min(limit, 500)
        rows: list[list[Cell]] = []
        now = datetime.now(UTC)
        shown = 0
        while shown < limit:
            found = await backend.list_pending(
                stream_id, group, after=after, count=min(page, limit - shown), consumer=consumer
            )
            if found is None:
                await stream_or_fail(backend, stream_id)
                raise CommandError(f"unknown group {group!r} on stream {stream_id!r}")
            for entry in found:
                held_since = since(entry.idle, now)
                if json:
                    write_json(
                        out,
                        {
                            "stream": stream_id,
                            "group": group,
                            "entry_id": entry.entry_id,
                            "consumer": entry.consumer,
                            "deliveries": entry.deliveries,
                            "idle": seconds(entry.idle),
                            "since": held_since,
                        },
                    )
                else:
                    idle = duration(entry.idle, infinite="due now")
                    row: list[Cell] = [entry.entry_id, entry.consumer, entry.deliveries]
                    rows.append([*row, idle, moment(held_since)])
            shown += len(found)
            if len(found) < page or not found:
                break
            after = found[-1].entry_id
        if not json:
            headers = ["entry id", "consumer", "deliveries", "idle", "since"]
            write_table(out, headers, rows, empty=f"nothing pending in group {group}")
    return EXIT_OK


async def run_consumers(
    target: str | Backend,
    stream_id: str,
    group: str,
    out: Output,
    *,
    reap_idle: float | None = None,
    json: bool = False,
) -> int:
    """List a group's consumers; with ``reap_idle``, delete those holding nothing and idle for
    that many seconds (atomically on the backend: one that got entries meanwhile is kept)."""
    async with opened(target) as plain:
        backend = operable(plain, "list consumers")
        consumers = await backend.list_consumers(stream_id, group)
        if consumers is None:
            await stream_or_fail(backend, stream_id)
            raise CommandError(f"unknown group {group!r} on stream {stream_id!r}")
        rows: list[list[Cell]] = []
        for consumer in consumers:
            action = None
            if reap_idle is not None:
                action = "kept"
                if consumer.pending == 0 and consumer.idle >= reap_idle:
                    removed = await backend.delete_idle_consumer(
                        stream_id, group, consumer.name, min_idle=reap_idle
                    )
                    action = "removed" if removed else "kept (busy again)"
            if json:
                doc: dict[str, object] = {
                    "stream": stream_id,
                    "group": group,
                    "consumer": consumer.name,
                    "pending": consumer.pending,
                    "idle": seconds(consumer.idle),
                }
                if action is not None:
                    doc["removed"] = action == "removed"
                write_json(out, doc)
                continue
            row: list[Cell] = [consumer.name, consumer.pending, duration(consumer.idle)]
            rows.append(row if action is None else [*row, action])
        if not json:
            headers = ["consumer", "pending", "idle"]
            if reap_idle is not None:
                headers.append("action")
            write_table(out, headers, rows, empty=f"no consumers in group {group}")
    return EXIT_OK


async def run_trim(
    target: str | Backend, stream_id: str, bound: TrimBound, out: Output, *, json: bool = False
) -> int:
    """Trim a stream exactly to ``bound``; print how many entries went and how many are left."""
    async with opened(target) as plain:
        backend = operable(plain, "trim streams")
        # Trimmed first: a bad id in the bound is the error to report, whether or not the
        # stream exists (a missing one trims nothing, then fails here).
        removed = await backend.trim_stream(stream_id, bound)
        info = await backend.stream_info(stream_id)
        if info is None:
            raise CommandError(f"unknown stream {stream_id!r} on {backend.description}")
        left = info.length
        if json:
            write_json(out, {"stream": stream_id, "removed": removed, "length": left})
        else:
            out.write(escape(f"trimmed {removed} entries from {stream_id}: {left} left") + "\n")
    return EXIT_OK


def parse_payload(text: str | None) -> object:
    """:raises CommandError: not JSON."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise CommandError(f"--payload is not JSON: {exc}") from None


async def run_send(
    target: str | Backend,
    stream_id: str,
    event_type: str,
    out: Output,
    *,
    payload: object = None,
    run_id: str | None = None,
    session_id: str | None = None,
    json: bool = False,
) -> int:
    """Publish one event to ``stream_id`` (for testing a consumer): an envelope as any sink
    writes it, run id ``cli-<random>`` and the stream's session id unless given."""
    if session_id is None:
        session_id = stream_id.removeprefix("session/") if "/" in stream_id else "cli"
    run_id = run_id or f"cli-{secrets.token_hex(4)}"
    event = StreamEvent(event_type, run_id, session_id, payload=payload)
    async with opened(target) as backend:
        sink = StreamSink(backend, SinkOptions(stream_id=lambda _: stream_id))
        async with sink:
            published = await sink.send(event)
    if json:
        write_json(out, {"stream": stream_id, "entry_id": published.entry_id, "type": event_type})
    else:
        out.write(escape(f"sent {event_type} to {stream_id} as {published.entry_id}") + "\n")
    return EXIT_OK
