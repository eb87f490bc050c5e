"""Appending: every entry of a batch published at once, the acknowledgements awaited in order.

One connection's messages reach the server in the order they were written, and JetStream
stores a stream's messages in the order they arrive, so publishing a whole batch before awaiting
any acknowledgement keeps the order of every stream's entries and costs one round trip per batch
instead of one per entry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio
import nats.js.errors
from streamsink import BackendUnavailableError
from streamsink.backend import Entry

from ._errors import translated

if TYPE_CHECKING:
    from ._backend import NatsBackend

__all__ = ["NAME_HEADER", "TOPIC_HEADER", "append"]

NAME_HEADER = "Streamsink-Name"
TOPIC_HEADER = "Streamsink-Topic"


def _headers(entry: Entry) -> dict[str, str]:
    headers = {NAME_HEADER: entry.name}
    if entry.topic is not None:
        headers[TOPIC_HEADER] = entry.topic
    return headers


async def append(backend: NatsBackend, entries: Sequence[Entry]) -> list[str]:
    """Publish ``entries`` and return their stream sequences, in order.

    Entries whose stream was missing on the server (deleted behind this backend's back) are
    published once more, one by one, after the stream was created again; those of them that a
    later entry of the same batch overtook (only if another connection re-created the stream
    within the batch) then come after it.

    :raises BackendUnavailableError: no server, or an acknowledgement not in time
        (``request_timeout`` each): entries before it are stored, later ones may be.
    """
    for stream_id in dict.fromkeys(entry.stream_id for entry in entries):
        await backend.ensure_stream(stream_id)
    if len(entries) == 1:
        # One entry gains nothing from pipelining, and a plain request costs less than an
        # asynchronous publish and its future.
        ids: list[str | None] = [await _publish(backend, entries[0])]
    else:
        ids = await _pipelined(backend, entries)
    if None not in ids:
        return [entry_id for entry_id in ids if entry_id is not None]
    return await _publish_again(backend, entries, ids)


async def _publish(backend: NatsBackend, entry: Entry) -> str | None:
    """Publish one entry and await its acknowledgement; None: its stream is missing."""
    with translated("append", backend.description):
        try:
            ack = await backend.js.publish(
                backend.subject(entry.stream_id),
                entry.payload,
                stream=backend.stream_name(entry.stream_id),
                headers=_headers(entry),
            )
        except nats.js.errors.NoStreamResponseError:
            return None
    return str(ack.seq)


async def _pipelined(backend: NatsBackend, entries: Sequence[Entry]) -> list[str | None]:
    """Publish every entry, then collect the acknowledgements in order; None: that entry's
    stream was missing."""
    js = backend.js
    timeout = backend.options.request_timeout
    futures: list[asyncio.Future[Any]] = []
    ids: list[str | None] = []
    # Subject and stream name of each stream once per batch: encoding the id costs per call.
    names = {
        stream_id: (backend.subject(stream_id), backend.stream_name(stream_id))
        for stream_id in {entry.stream_id for entry in entries}
    }
    try:
        with translated("append", backend.description):
            # Publishing only buffers, unless nats-py's 4,000 publishes in flight are reached:
            # then it waits for acknowledgements, ``request_timeout`` per 4,000 allowed.
            with anyio.fail_after(timeout * (1 + len(entries) // 4000)):
                for entry in entries:
                    subject, stream = names[entry.stream_id]
                    futures.append(
                        await js.publish_async(
                            subject, entry.payload, stream=stream, headers=_headers(entry)
                        )
                    )
            for future in futures:
                try:
                    if not future.done():
                        with anyio.fail_after(timeout):
                            await future
                    ack = future.result()
                except nats.js.errors.NoStreamResponseError:
                    ids.append(None)
                else:
                    ids.append(str(ack.seq))
    finally:
        for future in futures:
            future.cancel()  # those not acknowledged (after a failure): free their slots
    return ids


async def _publish_again(
    backend: NatsBackend, entries: Sequence[Entry], ids: list[str | None]
) -> list[str]:
    """``ids``, where the entries without one (their stream was missing) are published again
    one by one, into their streams created again (once)."""
    for stream_id in {entry.stream_id for entry, got in zip(entries, ids, strict=True) if not got}:
        backend.forget_stream(stream_id)
    result: list[str] = []
    for entry, entry_id in zip(entries, ids, strict=True):
        if entry_id is None:
            await backend.ensure_stream(entry.stream_id)
            entry_id = await _publish(backend, entry)
            if entry_id is None:
                raise BackendUnavailableError(
                    f"append on {backend.description}: JetStream has no stream for "
                    f"{entry.stream_id!r} even after creating it again"
                )
        result.append(entry_id)
    return result
