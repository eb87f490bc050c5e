"""The backend SPI: what a plugin implements so streamsink can run on it (DESIGN §2).

A backend is small: append entries, run a consumer group (read new entries, read its own pending
entries, claim idle entries of the group, ack, nack, touch), open a fan-out reader, destroy a
stream, close. Everything else (envelopes, stream ids, decoding, ack policy, dead-lettering,
retries, statistics) lives once in the core, so every backend behaves the same.

Rules every implementation follows (the conformance suite in :mod:`streamsink.testing` checks them):

- Entry ids are assigned by the backend, strictly increasing per stream, returned as text.
- Errors leave the backend as :mod:`streamsink` errors, never as driver exceptions:
  :class:`~streamsink.BackendUnavailableError` for anything worth retrying (connection lost,
  timeout), :class:`GroupLostError` when a consumer group vanished under a consumer,
  :class:`StreamDestroyedError` when the stream was destroyed through this backend,
  :class:`~streamsink.SinkClosedError` after ``aclose()``, other
  :class:`~streamsink.StreamsinkError` subclasses for the rest.
- Every blocking call is cancellable at once (anyio cancellation), and leaves the handle usable
  or cleanly closed; nothing keeps running after ``aclose()``.

A backend may also expose a ``claim_interval`` attribute (seconds): how often it suggests the
core scan a group for idle entries. Subscribers use it unless ``SubscriberOptions.claim_interval``
is set (default 0.5 s, as pulse).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Literal, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs

from ._exceptions import BackendUnavailableError, ConfigurationError
from ._slots import slot_setters

__all__ = [
    "Backend",
    "BackendFactory",
    "BackendURL",
    "Capabilities",
    "Entry",
    "Gap",
    "GroupConsumer",
    "GroupLostError",
    "Record",
    "RecordBatch",
    "StartPosition",
    "StreamDestroyedError",
    "StreamReader",
    "after_timestamp_id",
    "parse_entry_id",
]


class GroupLostError(BackendUnavailableError):
    """The consumer group (or its stream) vanished under a consumer, e.g. Redis FLUSHALL.

    The core answers by re-creating the group with :meth:`GroupConsumer.ensure_group`, with backoff.
    """


class StreamDestroyedError(BackendUnavailableError):
    """The stream was destroyed through this backend; subscriptions on it end cleanly."""


# Entries and records are made once per event sent or read: their __init__ calls the slots'
# setters (see `slot_setters`) instead of attrs' slower frozen __init__.


@attrs.frozen(init=False)
class Entry:
    """One entry to append: the event name (pulse field ``n``), the payload bytes (``p``) and an
    optional topic (``t``)."""

    stream_id: str
    name: str
    payload: bytes
    topic: str | None = None

    def __init__(self, stream_id: str, name: str, payload: bytes, topic: str | None = None) -> None:
        _set_entry_stream_id(self, stream_id)
        _set_entry_name(self, name)
        _set_entry_payload(self, payload)
        _set_entry_topic(self, topic)


@attrs.frozen(init=False)
class Record:
    """One entry as read back. ``name`` or ``payload`` is None when the entry lacks that field
    (entries written by other producers can be malformed). ``delivery_count`` counts this delivery:
    1 for a first delivery and for fan-out reads."""

    entry_id: str
    name: str | None
    payload: bytes | None
    topic: str | None = None
    delivery_count: int = 1

    def __init__(
        self,
        entry_id: str,
        name: str | None,
        payload: bytes | None,
        topic: str | None = None,
        delivery_count: int = 1,
    ) -> None:
        _set_record_entry_id(self, entry_id)
        _set_record_name(self, name)
        _set_record_payload(self, payload)
        _set_record_topic(self, topic)
        _set_record_delivery_count(self, delivery_count)


_set_entry_stream_id, _set_entry_name, _set_entry_payload, _set_entry_topic = slot_setters(Entry)
(
    _set_record_entry_id,
    _set_record_name,
    _set_record_payload,
    _set_record_topic,
    _set_record_delivery_count,
) = slot_setters(Record)


@attrs.frozen(kw_only=True)
class Gap:
    """Entries a subscription never got because the stream lost them first (trimmed by
    ``maxlen`` or by retention) while they were still unread by it.

    - ``stream_id``: the stream.
    - ``after``: the last entry id the subscription (or its group) had reached, or the resume
      point it was opened ``after``; None when not known.
    - ``before``: the first entry id still there after the gap; None when the stream holds
      nothing after it yet.
    - ``count``: how many entries were lost; None when the backend cannot tell (a resume from an
      id that is no longer in the stream: entries after it may or may not have existed).
    """

    stream_id: str
    after: str | None
    before: str | None
    count: int | None

    def describe(self) -> str:
        """One line for logs and error reports."""
        lost = "an unknown number of entries" if self.count is None else f"{self.count} entries"
        after = self.after or "the start"
        before = self.before or "the end"
        return f"{lost} of {self.stream_id!r} after {after} and before {before} were trimmed unread"


class RecordBatch(list[Record]):
    """What a read may return instead of a plain list when it has more to say than its records.

    ``gap``: entries lost between what the reader had reached and the first record of this batch
    (then this batch may also be empty: the loss was found before anything new arrived). A backend
    that cannot detect losses returns plain lists; one that can declares
    :attr:`Capabilities.reports_gaps`.
    """

    __slots__ = ("gap",)

    def __init__(self, records: Sequence[Record] = (), gap: Gap | None = None) -> None:
        super().__init__(records)
        self.gap = gap


@attrs.frozen
class StartPosition:
    """Where a new group or reader starts. Build with the class methods.

    - ``newest()``: only entries appended after the group/reader was created (the default);
    - ``oldest()``: every entry still in the stream;
    - ``after(entry_id)``: entries with a greater id (exclusive);
    - ``at(datetime)``: entries appended at or after that time (**inclusive**).

    When a group already exists its stored position wins, whatever the start says.
    """

    kind: Literal["newest", "oldest", "after", "at"]
    entry_id: str | None = None
    time: datetime | None = None

    @classmethod
    def newest(cls) -> StartPosition:
        return _NEWEST

    @classmethod
    def oldest(cls) -> StartPosition:
        return _OLDEST

    @classmethod
    def after(cls, entry_id: str) -> StartPosition:
        if not isinstance(entry_id, str) or not entry_id:
            raise ConfigurationError(
                f"StartPosition.after needs a non-empty entry id, got {entry_id!r}"
            )
        return cls("after", entry_id=entry_id)

    @classmethod
    def at(cls, time: datetime) -> StartPosition:
        if not isinstance(time, datetime) or time.tzinfo is None:
            raise ConfigurationError(
                f"StartPosition.at needs a timezone-aware datetime, got {time!r}"
            )
        return cls("at", time=time.astimezone(UTC))

    def __str__(self) -> str:
        if self.kind == "after":
            return f"after({self.entry_id})"
        if self.kind == "at":
            return f"at({self.time:%Y-%m-%dT%H:%M:%S.%fZ})"
        return self.kind


_NEWEST = StartPosition("newest")
_OLDEST = StartPosition("oldest")


_ENTRY_ID = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?", re.ASCII)
_MAX_PART = 2**64 - 1


def parse_entry_id(entry_id: str) -> tuple[int, int]:
    """Split a ``<ms>-<seq>`` id (Redis and memory backends) into integers; ``<ms>`` alone means
    ``<ms>-0``. Both parts are ASCII digits and fit in 64 bits, as Redis requires, so an id that
    one backend accepts every backend accepts.

    :raises ConfigurationError: anything else.
    """
    match = _ENTRY_ID.fullmatch(entry_id) if isinstance(entry_id, str) else None
    if match is None:
        raise ConfigurationError(
            f"entry id {entry_id!r:.80} is not of the form <ms>-<seq> (two decimal numbers)"
        )
    ms, seq = int(match[1]), int(match[2] or 0)
    if ms > _MAX_PART or seq > _MAX_PART:
        raise ConfigurationError(
            f"entry id {entry_id!r} is out of range: <ms> and <seq> must each be at most 2**64-1"
        )
    return ms, seq


_MAX_SEQ = 2**64 - 1


def after_timestamp_id(time: datetime) -> str:
    """The ``<ms>-<seq>`` id just before the first possible id at ``time``, so that reading
    *after* it includes entries stamped exactly at ``time`` (pulse's ``<ms>-0`` is exclusive)."""
    ms = int(time.timestamp() * 1000)
    return "0-0" if ms <= 0 else f"{ms - 1}-{_MAX_SEQ}"


@attrs.frozen
class Capabilities:
    """What a backend can show; the conformance suite skips checks by these flags, never by name.

    .. attribute:: consumer_groups   groups with acks, pending entries and claims
    .. attribute:: fan_out           readers that see every entry and leave no state behind
    .. attribute:: redelivery        idle entries can be claimed (``claim_idle``), nack and touch work
    .. attribute:: trim              streams are trimmed to an approximate maximum length
    .. attribute:: destroy_ends_subscriptions  ``destroy`` ends live subscriptions cleanly
    .. attribute:: trio              runs under trio as well as asyncio
    .. attribute:: persistent        entries outlive the process
    .. attribute:: reports_gaps      reads return a :class:`RecordBatch` naming the entries that
       were trimmed before the reader (or its group) got to them
    """

    consumer_groups: bool = True
    fan_out: bool = True
    redelivery: bool = True
    trim: bool = True
    destroy_ends_subscriptions: bool = True
    trio: bool = False
    persistent: bool = False
    reports_gaps: bool = False


class GroupConsumer(Protocol):
    """One named consumer in a consumer group on one stream.

    Entries read through it stay pending (owned by this consumer, with a delivery count and an
    idle time) until acked. Methods raise :class:`GroupLostError` when the group vanished.
    """

    @property
    def consumer(self) -> str:
        """This consumer's name within the group."""
        ...

    async def ensure_group(self, start: StartPosition) -> None:
        """Create the group at ``start`` if it does not exist (an existing group keeps its
        position), creating the stream if needed."""
        ...

    async def read_new(self, count: int, block: float) -> Sequence[Record]:
        """Up to ``count`` entries never delivered to the group, waiting up to ``block`` seconds
        for the first (``block <= 0``: do not wait); empty on timeout. They become pending for
        this consumer."""
        ...

    async def read_own_pending(self, after: str | None, count: int) -> Sequence[Record]:
        """Up to ``count`` of this consumer's own pending entries with ids greater than ``after``
        (all when None), in id order, without blocking; each counts as a new delivery (its
        delivery count grows, as a Redis history read does). Entries whose data is gone (trimmed)
        are removed from the pending list and not returned."""
        ...

    async def claim_idle(self, min_idle: float, count: int) -> Sequence[Record]:
        """Move up to ``count`` pending entries of the group idle for at least ``min_idle``
        seconds (any consumer's, including this one's) to this consumer and return them with
        their delivery counts incremented. Successive calls page through the pending list, and
        a call may scan only part of it (as XAUTOCLAIM does), so an empty answer does not prove
        that nothing further on is idle. An entry whose data is gone (trimmed) is dropped from
        the pending list and not returned."""
        ...

    async def ack(self, entry_ids: Sequence[str]) -> None:
        """Acknowledge entries (idempotent: acking an unknown or acked id is not an error)."""
        ...

    async def nack(self, entry_ids: Sequence[str]) -> None:
        """Make pending entries claimable at once, without waiting for the idle period."""
        ...

    async def touch(self, entry_ids: Sequence[str]) -> None:
        """Reset the idle time of this consumer's pending entries (a handler is still on them)."""
        ...

    async def aclose(self) -> None:
        """Release the consumer's resources; delete the consumer from the group when it holds
        no pending entries. Idempotent; pending entries stay for others to claim."""
        ...


class StreamReader(Protocol):
    """A fan-out reader: sees every entry after its start, acks nothing, leaves no state."""

    async def read(self, count: int, block: float) -> Sequence[Record]:
        """Up to ``count`` entries after the reader's cursor, waiting up to ``block`` seconds for
        the first (``block <= 0``: do not wait); empty on timeout. The start position is
        resolved when the reader is opened, so nothing appended after opening is missed."""
        ...

    async def aclose(self) -> None:
        """Release the reader. Idempotent."""
        ...


class Backend(Protocol):
    """A connection to one broker. Open by :func:`streamsink.open_backend` or a factory."""

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def description(self) -> str:
        """A short, password-free description (scheme and location), for logs and errors."""
        ...

    async def append(self, entries: Sequence[Entry]) -> list[str]:
        """Append entries (possibly to several streams) and return their ids, in order.

        Appends to one stream keep their order. Each stream is trimmed to the backend's
        configured approximate maximum length.
        """
        ...

    async def open_group_consumer(
        self, stream_id: str, group: str, consumer: str, start: StartPosition
    ) -> GroupConsumer:
        """Join (creating if needed) ``group`` on ``stream_id`` as ``consumer``."""
        ...

    async def open_reader(self, stream_id: str, start: StartPosition) -> StreamReader:
        """Open a fan-out reader on ``stream_id``."""
        ...

    async def destroy(self, stream_id: str) -> None:
        """Delete the stream with its entries and groups; destroying a missing stream is fine."""
        ...

    async def aclose(self) -> None:
        """Close the connection. Idempotent. Caller-owned clients are left open."""
        ...


def _hidden(value: str | None) -> str:
    """attrs ``repr`` of a credential field: whether it is set, never what it is."""
    return "None" if value is None else "'***'"


def _redacted_repr(url: str) -> str:
    return repr(_redact(url))


@attrs.frozen
class BackendURL:
    """A backend URL parsed once by the core; backends read their options from ``query``.

    ``query`` keeps every key=value pair in order; :meth:`options` turns it into a dict and
    refuses repeated keys. ``str()`` and ``repr()`` never show the user part (user name,
    password or token): it is replaced by ``***``.
    """

    raw: str = attrs.field(repr=_redacted_repr)
    scheme: str
    host: str
    port: int | None
    path: str
    username: str | None = attrs.field(repr=_hidden)
    password: str | None = attrs.field(repr=_hidden)
    query: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, url: str) -> BackendURL:
        """Split ``scheme://[user[:password]@]host[:port][/path][?query]`` into its parts,
        percent-decoding each.

        Messages show the URL with its user part redacted, never a secret.

        :raises ConfigurationError: not text; no ``scheme://`` or an invalid scheme; a ``#``
            anywhere, or an ``@`` after the host part (both usually a password, user name or
            token holding an unencoded ``#``, ``?``, ``/`` or ``@``: the message says to
            percent-encode it); a malformed host; a bad port.
        """
        if not isinstance(url, str):
            raise ConfigurationError(f"backend URL must be a string, got {type(url).__name__}")
        shown = _redact(url)
        if "://" not in url:
            raise ConfigurationError(
                f"backend URL {shown!r} has no scheme; expected e.g. 'memory://' or "
                "'redis://localhost:6379/0'"
            )
        scheme_text = url.partition("://")[0]
        if not _SCHEME.fullmatch(scheme_text):
            raise ConfigurationError(
                f"backend URL {shown!r} has an invalid scheme: expected a letter followed by "
                "letters, digits, '+', '-' or '.' before '://'"
            )
        if "#" in url:
            # urlsplit would take everything after it for a fragment and drop it silently.
            raise ConfigurationError(
                f"backend URL {shown!r} holds a '#', which would end the URL: backend URLs take "
                f"no fragment. {_PERCENT_ENCODE}"
            )
        # Raised outside the except blocks, so that urlsplit's error, which quotes the host
        # part with the user part, is not even kept as the new error's context.
        failure: str | None = None
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            failure = _split_failure(exc)
        if failure is not None:
            raise ConfigurationError(f"backend URL {shown!r} is malformed: {failure}")
        host_end = len(scheme_text) + 3 + len(parts.netloc)
        if url.rfind("@") >= host_end:
            # The user part ends at the last '@'; a '/' or '?' before it ended the host part
            # early, so the secret would be taken for a host, port, path or option.
            raise ConfigurationError(
                f"backend URL {shown!r} has a '/' or '?' before its last '@', which ends the "
                f"host part early. {_PERCENT_ENCODE}"
            )
        try:
            port, bad_port = parts.port, False
        except ValueError:
            port, bad_port = None, True
        if bad_port:
            raise ConfigurationError(
                f"backend URL {shown!r} has a bad port: expected a number from 0 to 65535 "
                "after the host and ':'"
            )
        return cls(
            raw=url,
            scheme=scheme_text.lower(),
            host=unquote(parts.hostname or ""),
            port=port,
            path=unquote(parts.path),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            query=tuple(parse_qsl(parts.query, keep_blank_values=True)),
        )

    def options(self) -> dict[str, str]:
        """The query as a dict. :raises ConfigurationError: a key given twice."""
        result: dict[str, str] = {}
        for key, value in self.query:
            if key in result:
                raise ConfigurationError(f"URL option {key!r} is given more than once in {self}")
            result[key] = value
        return result

    def __str__(self) -> str:
        return _redact(self.raw)


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_SCHEME_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_PERCENT_ENCODE = (
    "Percent-encode '#', '?', '/' and '@' in a user name, password or token (as %23, %3F, %2F "
    "and %40), and '#' and '@' in a path or option value."
)


def _split_failure(exc: ValueError) -> str:
    """Why urlsplit refused a URL, in words that do not quote it."""
    text = str(exc)
    if "IPv6" in text:
        return "an unbalanced '[' or ']' around an IPv6 host"
    if "NFKC" in text:
        return (
            "its user or host part holds characters that Unicode normalization turns into "
            "'/', '?', '#', '@' or ':' (such as full-width ones); percent-encode them"
        )
    return "it cannot be split into scheme, host, path and query"


def _redact(url: str) -> str:
    """``url`` with its whole user part (user name, password or token) replaced by ``***``.

    The user part is everything from ``scheme://`` (from the start, in text without a valid
    scheme) to the **last** ``@``, wherever urlsplit would end the host part: a password holding
    an unencoded ``/``, ``?`` or ``#`` is still hidden whole, and so is text that does not parse
    as a URL. An ``@`` in a path or option value counts too, hiding more than the user part
    (the host as well) rather than ever showing a secret. Idempotent.
    """
    prefix = _SCHEME_PREFIX.match(url)
    start = prefix.end() if prefix else 0
    at = url.rfind("@", start)
    if at < 0:
        return url
    return f"{url[:start]}***{url[at:]}"


BackendFactory = Callable[[BackendURL], Awaitable[Backend]]
"""What a plugin registers for a scheme: an async callable turning a parsed URL into a Backend."""
