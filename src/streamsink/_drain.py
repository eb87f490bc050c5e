"""A drain over every session: the sink copies each event into one of N aggregate streams
(``<prefix>/0`` .. ``<prefix>/<N-1>``, the shard picked by a stable hash of the event's stream
id), and a drain is an ordinary group subscription per shard (docs/drain.md).

This module holds what both sides share: :class:`DrainOptions`, the copy format
(:class:`DrainCopy`: the origin stream id, entry id and topic, then the envelope bytes exactly as
they were written), the :class:`DrainWriter` a sink appends through, and the decoder a drain
subscription reads copies with.
"""

from __future__ import annotations

import contextlib
import weakref
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import attrs
import orjson

from ._decoder import decode_entry
from ._envelope import decode_envelope
from ._events import Event, StreamEvent, set_event_entry_id, set_event_stream_id, set_event_topic
from ._exceptions import ConfigurationError, DecodeError, DrainAppendError, StreamsinkError
from ._streams import shown, validate_stream_id
from .backend import Backend, Entry
from .backend.options import option_rule as rule

__all__ = [
    "DEFAULT_DRAIN_PREFIX",
    "MAX_DRAIN_SHARDS",
    "DrainCopy",
    "DrainOptions",
    "DrainWriter",
    "decode_drain_copy",
    "drain_decoder",
    "encode_drain_copy",
    "is_drained",
]

DEFAULT_DRAIN_PREFIX = "drain"
MAX_DRAIN_SHARDS = 1024
_VERSION = 1


def _validate_prefix(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """A prefix whose shard ids are valid stream ids and cannot be session streams."""
    expected = "a stream id prefix such as 'drain' (the shards are '<prefix>/<n>')"
    if not isinstance(value, str) or not value:
        raise ConfigurationError(
            f"DrainOptions.prefix={shown(value)} is invalid: expected {expected}"
        )
    if value == "session" or value.endswith(":dlq"):
        raise ConfigurationError(
            f"DrainOptions.prefix={shown(value)} is invalid: its shards would be read as "
            f"{'session streams' if value == 'session' else 'dead-letter streams'}; expected "
            f"{expected}"
        )
    try:
        validate_stream_id(f"{value}/{MAX_DRAIN_SHARDS - 1}")
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"DrainOptions.prefix={shown(value)} is invalid: {exc}; expected {expected}"
        ) from None


def _validate_backend(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """None or a backend. The value is never shown: a URL given by mistake may hold a password."""
    if value is None or callable(getattr(value, "append", None)):
        return
    hint = (
        " (a URL? open it with streamsink.open_backend(url) first)"
        if isinstance(value, str)
        else ""
    )
    raise ConfigurationError(
        f"DrainOptions.backend is invalid: got a value of type {type(value).__name__}{hint}; "
        "expected a Backend "
        "(a connection of its own, e.g. with a larger maxlen), or None for the sink's"
    )


@attrs.frozen(kw_only=True)
class DrainOptions:
    """Where a sink copies every event it sends, and where a drain reads them.

    - ``shards``: how many aggregate streams (default 1, at most 1024). An event goes to shard
      ``crc32(utf-8 stream id) % shards``, so one stream's events keep their order in one shard;
      more shards spread the write load (on Redis Cluster, each shard is a key of its own slot)
      and let a drain read in parallel. Sinks and drains must agree on ``shards`` and
      ``prefix``; changing ``shards`` moves streams to other shards (docs/drain.md).
    - ``prefix``: the shards' stream ids are ``<prefix>/0`` .. ``<prefix>/<shards-1>`` (default
      ``drain``). Not ``session`` (the shards would pass for sessions) nor a ``:dlq`` name.
    - ``backend``: the connection copies are appended through (default None: the sink's own).
      Retention is the backend's (``maxlen``), so a drain that must survive an outage longer than
      the session streams' ``maxlen`` covers gets its own connection with a larger one, e.g.
      ``await streamsink.open_backend("redis://host/0?maxlen=1000000")``; the sink does not
      own it (close it after the sink). It may also be another broker; drains then read there.
    """

    shards: int = attrs.field(
        default=1,
        validator=rule(
            lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_DRAIN_SHARDS,
            f"an integer from 1 to {MAX_DRAIN_SHARDS}",
        ),
    )
    prefix: str = attrs.field(default=DEFAULT_DRAIN_PREFIX, validator=_validate_prefix)
    backend: Backend | None = attrs.field(default=None, validator=_validate_backend, eq=False)

    def stream_ids(self) -> tuple[str, ...]:
        """The shards' stream ids, in shard order."""
        return tuple(f"{self.prefix}/{n}" for n in range(self.shards))

    def shard_of(self, stream_id: str) -> str:
        """The shard that ``stream_id``'s events are copied to."""
        return (
            f"{self.prefix}/{zlib.crc32(stream_id.encode('utf-8', 'surrogatepass')) % self.shards}"
        )


@attrs.frozen(kw_only=True)
class DrainCopy:
    """One entry of a drain shard, unpacked: the event's own stream id, entry id and topic, and
    the envelope bytes exactly as they were written to its stream."""

    stream_id: str
    entry_id: str
    topic: str | None
    envelope: bytes


def encode_drain_copy(stream_id: str, entry_id: str, topic: str | None, envelope: bytes) -> bytes:
    """The payload of a drain copy: a one-line JSON header, a newline, the envelope bytes."""
    header = orjson.dumps(
        {"drain": _VERSION, "stream_id": stream_id, "entry_id": entry_id, "topic": topic}
    )
    return b"%b\n%b" % (header, envelope)


def decode_drain_copy(payload: bytes) -> DrainCopy:
    """Unpack a drain copy (a drain entry, or a drain dead letter's ``payload``).

    :raises DecodeError: ``payload`` is not a drain copy (the message says what is wrong).
    """
    if not isinstance(payload, bytes):
        raise DecodeError(f"a drain copy must be bytes, got {type(payload).__name__}")
    end = payload.find(b"\n")
    if end < 0:
        raise DecodeError("not a drain copy: no header line")
    try:
        header = orjson.loads(payload[:end])
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not a drain copy: its header is not JSON ({exc})") from None
    if type(header) is not dict or header.get("drain") != _VERSION:
        raise DecodeError(f"not a drain copy (version {_VERSION}): header {shown(header)}")
    stream_id, entry_id, topic = (
        header.get("stream_id"),
        header.get("entry_id"),
        header.get("topic"),
    )
    if (
        type(stream_id) is not str
        or type(entry_id) is not str
        or not (topic is None or type(topic) is str)
    ):
        raise DecodeError(f"a drain copy's header lacks its stream id or entry id: {shown(header)}")
    return DrainCopy(
        stream_id=stream_id, entry_id=entry_id, topic=topic, envelope=payload[end + 1 :]
    )


# Events a drain handed out, by identity (StreamEvent hashes by value and may hold dicts): a
# sink never copies them into a drain again, so relaying a drained event does not feed it back.
_DRAINED: dict[int, weakref.ref[Any]] = {}


def _mark_drained(event: object) -> None:
    key = id(event)

    def forget(ref: weakref.ref[Any], key: int = key) -> None:
        if _DRAINED.get(key) is ref:
            del _DRAINED[key]

    # A custom decoder's event that takes no weak reference is not marked.
    with contextlib.suppress(TypeError):
        _DRAINED[key] = weakref.ref(event, forget)


def is_drained(event: object) -> bool:
    """``event`` was handed out by a drain subscription (the very object, not a copy of it)."""
    ref = _DRAINED.get(id(event))
    return ref is not None and ref() is event


def drain_decoder(decoder: Callable[[bytes], Event]) -> Callable[[bytes], Event]:
    """The decoder of a drain shard's entries: unpack the copy, decode its envelope with
    ``decoder``, and give a :class:`StreamEvent` its own stream id, entry id and topic.

    :raises DecodeError: not a drain copy; or whatever ``decoder`` raises for the envelope.
    """
    default = decoder is decode_envelope

    def decode(payload: bytes) -> Event:
        copy = decode_drain_copy(payload)
        if default:
            event: Event = decode_entry(copy.envelope, copy.entry_id, copy.stream_id)
        else:
            event = decoder(copy.envelope)
            if type(event) is StreamEvent:
                set_event_stream_id(event, copy.stream_id)
                set_event_entry_id(event, copy.entry_id)
        if copy.topic is not None and type(event) is StreamEvent:
            set_event_topic(event, copy.topic)
        _mark_drained(event)
        return event

    return decode


class _Relayed(Entry):
    """An entry of a drained event being relayed: written to its stream, never copied again."""

    __slots__ = ()


class DrainWriter:
    """What a sink with ``SinkOptions.drain`` appends through: each call appends the entries,
    then their copies (one backend call each, in that order)."""

    def __init__(self, backend: Backend, options: DrainOptions) -> None:
        self._backend = backend
        self._target = options.backend if options.backend is not None else backend
        self._options = options
        self._shard_ids = options.stream_ids()
        self._shards = frozenset(self._shard_ids)

    @property
    def options(self) -> DrainOptions:
        return self._options

    def entry(self, event: Event, entry: Entry) -> Entry:
        """``entry`` of ``event``, marked not to be copied if the event came from a drain."""
        return _Relayed(*entry) if is_drained(event) else entry

    async def append(self, entries: Sequence[Entry]) -> list[str]:
        """Append ``entries``, then their drain copies; return the entries' ids.

        Cancelling waits for both appends (a cancelled send whose entry was written still gets
        its copy). Entries written to a shard itself, and relayed drained events, get no copy.

        :raises DrainAppendError: the entries are written, their copies are not (or may not be).
        :raises StreamsinkError: the entries' own append failed (as a send without a drain).
        """
        with anyio.CancelScope(shield=True):
            ids = await self._backend.append(entries)
            copies: list[Entry] = []
            written: list[tuple[str, str]] = []
            shards, count = self._shard_ids, len(self._shard_ids)
            for entry, entry_id in zip(entries, ids, strict=True):
                stream_id = entry.stream_id
                if type(entry) is _Relayed or stream_id in self._shards:
                    continue
                shard = shards[zlib.crc32(stream_id.encode("utf-8", "surrogatepass")) % count]
                payload = encode_drain_copy(stream_id, entry_id, entry.topic, entry.payload)
                copies.append(Entry(shard, entry.name, payload, entry.topic))
                written.append((stream_id, entry_id))
            if copies:
                await self.append_copies(copies, written)
        return ids

    async def append_copies(
        self, copies: Sequence[Entry], written: Sequence[tuple[str, str]]
    ) -> None:
        """Append drain ``copies`` of the entries ``written``.

        :raises DrainAppendError: they were not (or may not be) written.
        """
        try:
            await self._target.append(copies)
        except StreamsinkError as exc:
            where = ", ".join(f"{s} as {i}" for s, i in written[:3])
            more = f" and {len(written) - 3} more" if len(written) > 3 else ""
            raise DrainAppendError(
                f"{len(written)} event(s) were written ({where}{more}) but their drain copies "
                f"were not, or may not be: {exc}. Do not send them again (they would be "
                "written twice); StreamSink.redrain(error) appends the copies",
                written=written,
                copies=copies,
            ) from exc
