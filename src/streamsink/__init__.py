"""streamsink: carry an agent runtime's events between processes, on any backend.

Publish with a :class:`Sink`, consume with a :class:`Subscriber`; pick the backend by URL
(``memory://``, ``redis://host:6379/0``, ``fakeredis://``, or any installed plugin's scheme)::

    async with streamsink.connect("memory://") as streams:
        await streams.sink.send(streamsink.StreamEvent("tool_start", "run-1", "session-1"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._blocking import BlockingSink
from ._consuming import Delivery, Subscription, SubscriptionStatistics
from ._deadletter import DeadLetter, decode_dead_letter, encode_dead_letter
from ._drain import DrainCopy, DrainOptions, decode_drain_copy
from ._drain_subscription import DrainSubscription
from ._envelope import Envelope, decode_envelope, encode_envelope, event_timestamp, relay_envelope
from ._events import Event, EventType, StreamEvent
from ._exceptions import (
    AckError,
    BackendClosedError,
    BackendNotFoundError,
    BackendUnavailableError,
    ClosedError,
    ConfigurationError,
    ConsumerDeletedError,
    DeadLetteredError,
    DeadLetterFailedError,
    DecodeError,
    DrainAppendError,
    DurabilityError,
    EntriesSkippedError,
    GroupLostError,
    PublishError,
    SinkClosedError,
    StreamDestroyedError,
    StreamsinkError,
    SubscriptionError,
)
from ._instrument import (
    ProcessObservation,
    SendObservation,
    SinkInstrument,
    SubscriberInstrument,
)
from ._options import DEFAULT_GROUP, SubscriberOptions, default_dead_letter_stream
from ._plugins import get_plugin_manager, get_registry, open_backend
from ._registry import BackendRegistry
from ._runtime import DEFAULT_URL, URL_ENV, RuntimeStreams, connect
from ._runtime_statistics import RuntimeStatistics, SinkStatistics
from ._sink import PublishedEvent, Sink, SinkOptions, StreamSink
from ._streams import default_stream_id, validate_name, validate_stream_id
from ._subscriber import StreamSubscriber, Subscriber
from ._topics import event_topic
from ._worker import Worker
from .backend import Capabilities, Gap, StartPosition
from .hookspecs import hookimpl

if TYPE_CHECKING:
    from .payloads import Payload, RawPayload, typed_payload

__all__ = [
    # events and the wire format
    "EventType",
    "Event",
    "StreamEvent",
    "Envelope",
    "encode_envelope",
    "decode_envelope",
    "relay_envelope",
    "event_timestamp",
    # typed payloads (the classes themselves are in streamsink.payloads)
    "typed_payload",
    "Payload",
    "RawPayload",
    # publishing
    "Sink",
    "StreamSink",
    "SinkOptions",
    "PublishedEvent",
    "SinkInstrument",
    "SendObservation",
    "BlockingSink",
    "default_stream_id",
    "event_topic",
    "validate_stream_id",
    "validate_name",
    # consuming
    "Subscriber",
    "StreamSubscriber",
    "SubscriberOptions",
    "Subscription",
    "SubscriptionStatistics",
    "SubscriberInstrument",
    "ProcessObservation",
    "RuntimeStatistics",
    "SinkStatistics",
    "Delivery",
    "StartPosition",
    "Gap",
    "DEFAULT_GROUP",
    "DeadLetter",
    "default_dead_letter_stream",
    "encode_dead_letter",
    "decode_dead_letter",
    # a drain over every session (docs/drain.md)
    "DrainOptions",
    "DrainSubscription",
    "DrainCopy",
    "Worker",
    "decode_drain_copy",
    # wiring
    "RuntimeStreams",
    "connect",
    "open_backend",
    "Capabilities",
    "DEFAULT_URL",
    "URL_ENV",
    "hookimpl",
    "BackendRegistry",
    "get_plugin_manager",
    "get_registry",
    # errors
    "StreamsinkError",
    "ConfigurationError",
    "BackendNotFoundError",
    "ClosedError",
    "SinkClosedError",
    "BackendClosedError",
    "PublishError",
    "DrainAppendError",
    "DurabilityError",
    "DecodeError",
    "AckError",
    "SubscriptionError",
    "EntriesSkippedError",
    "BackendUnavailableError",
    "GroupLostError",
    "StreamDestroyedError",
    "ConsumerDeletedError",
    "DeadLetteredError",
    "DeadLetterFailedError",
]


# streamsink.payloads builds 28 attrs classes, a fifth of the time `import streamsink` takes:
# its names load on first use.
_FROM_PAYLOADS = frozenset({"typed_payload", "Payload", "RawPayload"})


def __getattr__(name: str) -> Any:
    if name in _FROM_PAYLOADS:
        from . import payloads

        return getattr(payloads, name)
    if name == "__version__":
        from importlib.metadata import version

        return version("streamsink")
    raise AttributeError(f"module 'streamsink' has no attribute {name!r}")
