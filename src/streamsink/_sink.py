"""The publishing side: ``StreamSink`` turns events into envelopes and appends them."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from anyio.abc import AsyncResource
from orjson import dumps as _orjson_dumps

from ._coalesce import Coalescer
from ._drain import DrainWriter
from ._envelope import Envelope, encode_envelope, encode_fields, event_timestamp, now_timestamp
from ._events import Event, StreamEvent, raw_json
from ._exceptions import ConfigurationError, DrainAppendError, SinkClosedError, StreamsinkError
from ._instrument import SinkInstrument
from ._runtime_statistics import SinkStatistics
from ._sink_options import OnPublished, PublishedEvent, Sink, SinkOptions
from ._streams import (
    default_stream_id,
    refuse_lone_surrogates,
    shown,
    validate_event_type,
    validate_stream_id,
)
from ._timestamps import go_datetime
from ._topics import validate_topic
from .backend import Backend, Entry

__all__ = ["PublishedEvent", "Sink", "SinkOptions", "StreamSink"]


_tuple_new = tuple.__new__
_NONE = object()  # never any event's session id
_VALID_KEPT = 4096  # checked stream ids (event types, topics) remembered per sink, at most


def _check_text_fields(**fields: object) -> None:
    """Envelope text fields must be text (or None): anything else would be written as a JSON
    number or object that no decoder, ours or Go's, accepts back."""
    for name, value in fields.items():
        if value is not None and not isinstance(value, str):
            raise ConfigurationError(
                f"event field {name} must be a string, got {type(value).__name__} {shown(value)}"
            )


class StreamSink(AsyncResource):
    """Publishes events to a backend as envelopes (docs/contract.md, rules 1-5).

    The sink does not own the backend: ``aclose`` stops this sink only. Concurrent ``send`` calls
    share backend round trips; each still returns only after its own entry is written, with its
    own entry id.
    """

    def __init__(self, backend: Backend, options: SinkOptions | None = None) -> None:
        self._backend = backend
        self._options = options if options is not None else SinkOptions()
        self._closed = False
        drain = self._options.drain
        self._drain = None if drain is None else DrainWriter(backend, drain)
        self._append = backend.append if self._drain is None else self._drain.append
        self._appender: Coalescer[Entry, str] = Coalescer(self._append)
        self._instrument = self._options.instrument
        self._on_published = self._options.on_published
        self._topic_of = self._options.topic
        self._default_stream_ids = self._options.stream_id is default_stream_id
        # The default encoder needs no Envelope object: skipping it saves an allocation per send.
        self._fast_encode = self._options.marshal_envelope is encode_envelope
        self._relay_timestamps = self._options.timestamps == "event"
        # Stream ids and event types already validated: a runtime sends many events to few
        # streams with few types, and the checks (a regex, a scan of the text) would otherwise
        # run on every send. Each is cleared when it grows large.
        self._valid_stream_ids: set[str] = set()
        self._valid_event_types: set[str] = set()
        self._valid_topics: set[str] = set()
        # The session id of the last event sent with a default stream id, and that stream id.
        self._last_session_id: object = _NONE
        self._last_stream_id = ""
        self._sent = 0
        self._failed = 0

    @property
    def options(self) -> SinkOptions:
        return self._options

    async def send(self, event: Event) -> PublishedEvent:
        """Publish one event; return where it went and its entry id.

        :raises SinkClosedError: the sink is closed (nothing written).
        :raises ConfigurationError: no session id, a bad stream id, an event type that is not
            printable text, a text field that is not text (or holds a lone surrogate), a
            payload that cannot be encoded (of a type orjson refuses, containing itself, or
            nested too deep), or a bad topic from ``SinkOptions.topic`` (nothing written; the
            message names the field, payload path or option).
        :raises PublishError: the backend refused the entry.
        :raises BackendUnavailableError: the backend could not be reached (may or may not be written).
        """
        if self._closed:
            raise SinkClosedError("send() on a closed sink")
        entry = self._entry(event)
        if self._instrument is not None:
            return await self._send_observed(self._instrument, event, entry)
        if self._drain is not None:
            entry = self._drain.entry(event, entry)
        appender = self._appender
        try:
            if appender.claim():  # nothing in flight: straight to the backend
                try:
                    (entry_id,) = await self._append((entry,))
                finally:
                    appender.release()
            else:
                (entry_id,) = await appender.submit((entry,))
        except StreamsinkError:
            self._failed += 1
            raise
        self._sent += 1
        published = _tuple_new(PublishedEvent, (event, entry.stream_id, entry_id))
        if self._on_published is not None:
            await self._notify(self._on_published, published)
        return published

    async def send_many(self, events: Iterable[Event]) -> list[PublishedEvent]:
        """Publish several events in one backend round trip, in order.

        Every event is validated and encoded before anything is written, so a bad event fails the
        call with nothing written. ``on_published`` runs once per event, in order.
        """
        if self._closed:
            raise SinkClosedError("send_many() on a closed sink")
        try:
            events = list(events)
        except TypeError:
            raise ConfigurationError(
                f"send_many() takes an iterable of events, got {type(events).__name__}"
            ) from None
        entries = [self._entry(event) for event in events]
        if not entries:
            return []
        observation = None
        if self._instrument is not None:
            # Before the drain marks entries: the instrument may replace them (same fields).
            observation = self._instrument.start_send(entries)
            entries = list(observation.entries)
        written = entries
        if self._drain is not None:
            written = [
                self._drain.entry(e, entry) for e, entry in zip(events, entries, strict=True)
            ]
        try:
            ids = await self._appender.submit(written)
        except BaseException as exc:
            if isinstance(exc, StreamsinkError):
                self._failed += 1
            if observation is not None:
                observation.end(None, exc)
            raise
        self._sent += len(ids)
        if observation is not None:
            observation.end(ids, None)
        published = [
            PublishedEvent(event, entry.stream_id, entry_id)
            for event, entry, entry_id in zip(events, entries, ids, strict=True)
        ]
        if self._options.on_published is not None:
            for item in published:
                await self._notify(self._options.on_published, item)
        return published

    def _entry(self, event: Event) -> Entry:
        try:
            event_type = event.type
            run_id, session_id, event_key = event.run_id, event.session_id, event.event_key
            event_payload = event.payload
            checked = session_id is self._last_session_id  # default stream ids only
            if checked:
                stream_id = self._last_stream_id
            elif self._default_stream_ids and session_id:
                stream_id = f"session/{session_id}"  # default_stream_id, without a call
            else:
                stream_id = self._options.stream_id(event)
        except AttributeError as exc:
            raise ConfigurationError(
                "expected an event with type, run_id, session_id, event_key and payload, "
                f"got {type(event).__name__}: {exc}"
            ) from None
        if not checked:
            if type(stream_id) is not str or stream_id not in self._valid_stream_ids:
                self._remember_stream_id(stream_id, session_id)
            if self._default_stream_ids:
                # A runtime sends event after event of one session, with the same session id
                # object: the next of them skips building and looking up its stream id.
                self._last_session_id, self._last_stream_id = session_id, stream_id
        if type(event_type) is not str:  # a str subclass (an EventType member): its value
            event_type = (
                str(event_type) if isinstance(event_type, str) else validate_event_type(event_type)
            )
        if event_type not in self._valid_event_types:
            self._remember_event_type(event_type)
        if not (type(run_id) is str and type(session_id) is str and type(event_key) is str):
            _check_text_fields(run_id=run_id, session_id=session_id, event_key=event_key)
        source = None
        if type(event) is StreamEvent:
            server_data = event.server_data  # checked to be raw JSON bytes when it was made
            source = event._source  # the slot: the property would cost a call on every send
        else:
            server_data = getattr(event, "server_data", None)
            if server_data is not None:
                server_data = raw_json(server_data)
        if self._fast_encode:
            timestamp = event_timestamp(event) if self._relay_timestamps else now_timestamp()
            payload = None
            usual = event_key and session_id and event_payload is not None and not server_data
            if usual and source is None:
                # The usual event: encode_fields' first case, here (a call less per send).
                try:
                    payload = _orjson_dumps(
                        {
                            "type": event_type,
                            "event_key": event_key,
                            "run_id": run_id,
                            "session_id": session_id,
                            "timestamp": timestamp,
                            "payload": event_payload,
                        }
                    )
                except TypeError:
                    payload = None  # encode_fields raises the error naming what cannot be encoded
            if payload is None:
                payload = encode_fields(
                    event_type,
                    event_key,
                    run_id,
                    session_id,
                    timestamp,
                    event_payload,
                    server_data,
                    None if source is None else event._received(),  # type: ignore[attr-defined]
                )
        else:
            envelope = Envelope(
                type=event_type,
                event_key=event_key,
                run_id=run_id,
                session_id=session_id,
                timestamp=self._timestamp(event) if self._relay_timestamps else datetime.now(UTC),
                payload=event_payload,
                server_data=server_data,
                source=None if source is None else event.source,  # type: ignore[attr-defined]
            )
            payload = self._options.marshal_envelope(envelope)
            if not isinstance(payload, bytes):
                raise ConfigurationError(
                    f"marshal_envelope must return bytes, got {type(payload).__name__}"
                )
        topic_of = self._topic_of
        # tuple.__new__ skips the NamedTuple's Python-level __new__ (fields in Entry's order).
        if topic_of is None:
            return _tuple_new(Entry, (stream_id, event_type, payload, None))
        topic = self._topic(topic_of, event, event_type)
        return _tuple_new(Entry, (stream_id, event_type, payload, topic))

    def _timestamp(self, event: Event) -> datetime:
        """The event's own timestamp, for ``marshal_envelope`` when relaying.

        :raises ConfigurationError: none, or one outside the years a datetime holds.
        """
        event_timestamp(event)  # raises if the event has none
        timestamp = getattr(event, "timestamp", None)
        if isinstance(timestamp, datetime):
            return timestamp
        received = event._received() if type(event) is StreamEvent else None
        stamp = None if received is None or received.timestamp is None else received.timestamp
        if stamp is not None and go_datetime(stamp) is None:
            raise ConfigurationError(
                f"a {event.type!r} event's timestamp is outside the years 1 to 9999 in UTC that "
                "an Envelope's datetime holds; the default marshal_envelope relays it"
            )
        raise ConfigurationError(f"a {event.type!r} event has no timestamp of its own to relay")

    def _topic(
        self, topic_of: Callable[[Event], str | None], event: Event, event_type: str
    ) -> str | None:
        """The topic ``SinkOptions.topic`` gives ``event``, validated (once per distinct topic).

        :raises ConfigurationError: the callable raised (its error chained; a streamsink error
            goes through as it is), or gave something :func:`validate_topic` refuses.
        """
        try:
            topic = topic_of(event)
        except StreamsinkError:
            raise
        except Exception as exc:
            raise ConfigurationError(
                f"SinkOptions.topic raised on a {event_type!r} event: {exc!r}"
            ) from exc
        if topic is None or (type(topic) is str and topic in self._valid_topics):
            return topic
        try:
            valid = validate_topic(topic)
        except ConfigurationError as exc:
            raise ConfigurationError(
                f"SinkOptions.topic gave an invalid topic for a {event_type!r} event: {exc}"
            ) from None
        if len(self._valid_topics) >= _VALID_KEPT:
            self._valid_topics.clear()
        self._valid_topics.add(valid)
        return valid

    def _remember_stream_id(self, stream_id: object, session_id: object) -> None:
        """Validate a stream id not seen before; remember it once valid.

        :raises ConfigurationError: see :func:`validate_stream_id`; a lone surrogate in the
            session id the default stream id was made of is reported as the session id's.
        """
        if self._default_stream_ids and isinstance(session_id, str):
            refuse_lone_surrogates("event field session_id", session_id)
        valid = validate_stream_id(stream_id)
        if len(self._valid_stream_ids) >= _VALID_KEPT:
            self._valid_stream_ids.clear()
        self._valid_stream_ids.add(valid)

    def _remember_event_type(self, event_type: str) -> None:
        """Validate an event type not seen before; remember it once valid.

        :raises ConfigurationError: see :func:`validate_event_type`.
        """
        valid = validate_event_type(event_type)
        if len(self._valid_event_types) >= _VALID_KEPT:
            self._valid_event_types.clear()
        self._valid_event_types.add(valid)

    async def _notify(self, callback: OnPublished, published: PublishedEvent) -> None:
        result = callback(published)
        if inspect.isawaitable(result):
            await result

    async def redrain(self, error: DrainAppendError) -> None:
        """Append the drain copies a half-failed send left unwritten (``error.copies``), once:
        later calls with the same error do nothing. Works on a closed sink too.

        :raises ConfigurationError: this sink has no drain.
        :raises DrainAppendError: they could not be written again (a new error, to redrain).
        """
        if self._drain is None:
            raise ConfigurationError("redrain() on a sink without SinkOptions.drain")
        if error.redrained:
            return
        await self._drain.append_copies(error.copies, error.written)
        error.redrained = True

    async def _send_observed(
        self, instrument: SinkInstrument, event: Event, entry: Entry
    ) -> PublishedEvent:
        """``send`` with an instrument: told before the append and after it, whatever happened."""
        observation = instrument.start_send((entry,))
        (entry,) = observation.entries
        written = entry if self._drain is None else self._drain.entry(event, entry)
        try:
            (entry_id,) = await self._appender.submit((written,))
        except BaseException as exc:
            if isinstance(exc, StreamsinkError):
                self._failed += 1
            observation.end(None, exc)
            raise
        self._sent += 1
        observation.end((entry_id,), None)
        published = PublishedEvent(event, entry.stream_id, entry_id)
        if self._on_published is not None:
            await self._notify(self._on_published, published)
        return published

    def statistics(self) -> SinkStatistics:
        """The sink's counters: events written, and calls the backend failed."""
        return SinkStatistics(sent=self._sent, failed=self._failed)

    async def aclose(self) -> None:
        """Stop accepting events. Idempotent. Sends already in flight finish."""
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed
