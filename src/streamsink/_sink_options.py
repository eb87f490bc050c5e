"""What a sink is and how it is configured: the :class:`Sink` protocol, :class:`SinkOptions` and
:class:`PublishedEvent`, apart from :class:`~streamsink.StreamSink`'s publishing itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import NamedTuple, Protocol, Self

import attrs

from ._drain import DrainOptions
from ._envelope import Envelope, encode_envelope
from ._events import Event
from ._instrument import SinkInstrument
from ._streams import default_stream_id
from .backend.options import option_rule as rule

__all__ = ["OnPublished", "PublishedEvent", "Sink", "SinkOptions"]


class Sink(Protocol):
    """Where a runtime sends its events.

    - ``send`` is safe to call concurrently; events sent one after another by one task keep
      their order. A ``send`` that returned is durable in the backend; one that raised may or may
      not have been written.
    - After ``aclose()`` every ``send`` raises :class:`SinkClosedError`; ``aclose`` is idempotent.
    """

    async def send(self, event: Event) -> object: ...
    async def aclose(self) -> None: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class PublishedEvent(NamedTuple):
    """What ``send`` returns and ``on_published`` receives: the event, where it went, its id.
    Immutable (one is made per send: a NamedTuple builds faster than a frozen attrs class);
    unpacks as ``event, stream_id, entry_id``."""

    event: Event
    stream_id: str
    entry_id: str


OnPublished = Callable[[PublishedEvent], Awaitable[None] | None]


@attrs.frozen(kw_only=True)
class SinkOptions:
    """How a :class:`StreamSink` names streams, encodes envelopes and reports publishes.

    - ``stream_id(event) -> str``: the stream an event goes to (default ``session/<session_id>``).
    - ``marshal_envelope(envelope) -> bytes``: the encoder (default :func:`encode_envelope`).
    - ``on_published(published)``: called (sync or async) after each successful append. If it
      raises, ``send`` raises that same error — **and the entry is already written**, so a retry
      publishes the event twice.
    - ``topic(event) -> str | None``: the topic the event's entry is written with (pulse field
      ``t``, as Go's ``Add(..., WithTopic(topic))``), None for none. Default None: no topic, even
      for an event that carries one; :func:`streamsink.event_topic` publishes each event's own
      ``topic`` attribute (and relays received events with theirs). A topic is a non-empty
      printable string of at most 512 characters: it is stored with every entry, matched
      exactly by ``SubscriberOptions.topic`` and shown by tools, where a control or invisible
      character would garble a line or make a filter that reads right miss. Anything else, or
      an exception raised by the callable, fails the send with :class:`ConfigurationError`,
      nothing written.
    - ``timestamps``: ``"now"`` (default) stamps every envelope with the time of the send, as
      Go's sink does (``time.Now().UTC()``). ``"event"`` relays: each envelope carries the
      event's own timestamp, a received event's exactly as it was received (nanoseconds and
      offset, ``StreamEvent.timestamp_ns``/``timestamp_offset``) while its ``timestamp`` is
      unchanged, so a received event that was not changed is written back byte for byte as
      Go wrote it. An event without a timestamp of its own fails the send with
      :class:`ConfigurationError`, nothing written. Whatever this says, a received event's
      text fields, payload and server_data are written as Go writes them (see
      :func:`encode_envelope`).
    - ``drain``: a :class:`DrainOptions` to also copy every event into an aggregate stream
      (one of its shards) that ``StreamSubscriber.subscribe_drain`` reads; default None, no
      copies. See docs/drain.md: each send then makes two appends (the event, then its copy),
      and one whose copy failed raises :class:`DrainAppendError`.
    - ``instrument``: a :class:`~streamsink.SinkInstrument` told about every send (e.g.
      :class:`streamsink.otel.Tracing`: a producer span per send, its trace context carried in
      the envelope); default None, no calls.
    """

    stream_id: Callable[[Event], str] = attrs.field(
        default=default_stream_id, validator=rule(callable, "a callable taking an event")
    )
    marshal_envelope: Callable[[Envelope], bytes] = attrs.field(
        default=encode_envelope, validator=rule(callable, "a callable taking an Envelope")
    )
    on_published: OnPublished | None = attrs.field(
        default=None, validator=rule(lambda v: v is None or callable(v), "a callable or None")
    )
    topic: Callable[[Event], str | None] | None = attrs.field(
        default=None,
        validator=rule(
            lambda v: v is None or callable(v), "a callable taking an event, or None for no topic"
        ),
    )
    timestamps: str = attrs.field(
        default="now",
        validator=rule(
            lambda v: v in ("now", "event") and type(v) is str,
            "'now' (stamp each envelope at send) or 'event' (relay each event's own timestamp)",
        ),
    )
    drain: DrainOptions | None = attrs.field(
        default=None,
        validator=rule(
            lambda v: v is None or isinstance(v, DrainOptions),
            "a DrainOptions, or None for no drain",
        ),
    )
    instrument: SinkInstrument | None = attrs.field(
        default=None,
        validator=rule(
            lambda v: v is None or callable(getattr(v, "start_send", None)),
            "an object with start_send(entries) (e.g. streamsink.otel.Tracing()), or None",
        ),
    )
