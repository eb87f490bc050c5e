"""Every error streamsink raises, under one root.

::

    StreamsinkError
    ├── ConfigurationError (also ValueError)   bad option, URL, stream id or event
    │   └── BackendNotFoundError (also LookupError)   no backend for a URL scheme
    ├── ClosedError                             used after aclose()
    │   ├── SinkClosedError                     send() after the sink's aclose()
    │   └── BackendClosedError                  a backend, consumer or reader after its aclose()
    ├── PublishError                            the backend did not take an entry
    │   └── DrainAppendError                    written to its stream, not copied to the drain
    ├── DecodeError (also ValueError)           bytes that are not an envelope (stream, entry, bytes)
    ├── AckError                                the backend did not take an ack (the entry ids)
    ├── SubscriptionError                       a subscription ended by a failure
    ├── EntriesSkippedError                     reported, never raised: entries trimmed unread
    ├── DeadLetteredError                       reported, never raised: an entry was dead-lettered
    ├── DeadLetterFailedError                   reported, never raised: a dead letter not written
    ├── StreamDestroyedError                    the stream was destroyed: a clean end, not a retry
    └── BackendUnavailableError                 the backend cannot be reached (retryable)
        ├── GroupLostError                      a consumer group vanished (re-created by the core)
        └── ConsumerDeletedError                a group consumer was deleted while open

"Reported" errors go to a subscriber's ``on_error`` (and its statistics); the subscription goes
on. Every error keeps its data as attributes, so a handler can act on it without parsing text.

Backends translate their driver's errors into these at the SPI boundary, so an application
catches ``StreamsinkError`` and never a redis-py (or other driver) exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._deadletter import DeadLetter
    from .backend import Entry, Gap

__all__ = [
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
    "DeadLetteredError",
    "DeadLetterFailedError",
    "StreamDestroyedError",
    "BackendUnavailableError",
    "GroupLostError",
    "ConsumerDeletedError",
]


class StreamsinkError(Exception):
    """Root of every error raised by streamsink and its backends."""


class ConfigurationError(StreamsinkError, ValueError):
    """An option, URL, stream id or event is not acceptable; nothing was written."""


class BackendNotFoundError(ConfigurationError, LookupError):
    """No installed backend serves a URL scheme.

    ``scheme`` is the scheme asked for, ``available`` the installed ones.
    """

    def __init__(self, scheme: str, available: Sequence[str], hint: str | None = None) -> None:
        self.scheme = scheme
        self.available = tuple(sorted(available))
        self.hint = hint
        message = f"no streamsink backend for scheme {scheme!r}"
        if hint:
            message += f"; {hint}"
        installed = ", ".join(f"{s}://" for s in self.available) or "none"
        message += f" (installed: {installed})"
        super().__init__(message)


class ClosedError(StreamsinkError):
    """Something was used after its ``aclose()``; nothing was done. Catch this for both kinds."""


class SinkClosedError(ClosedError):
    """A sink was used after its ``aclose()``; nothing was written."""


class BackendClosedError(ClosedError):
    """A backend, or a group consumer or reader opened from it, was used after its ``aclose()``
    (or the backend was closed while a read was blocked on it); nothing was done."""


class PublishError(StreamsinkError):
    """The backend refused or failed an append; the entry may or may not be written."""


class DrainAppendError(PublishError):
    """Events were written to their own streams but their copies to the drain were not (or may
    not have been): a send through a sink with ``SinkOptions.drain`` half-failed.

    - ``written``: ``(stream id, entry id)`` of every event of the failed call that *is* in its
      stream; sending those events again would write them twice;
    - ``copies``: the drain entries that were not written (the backend's
      :class:`~streamsink.backend.Entry` objects, ready to append again);
      :meth:`StreamSink.redrain` appends them (once per error).

    ``on_published`` was not called for them. Concurrent sends share a backend call, so each
    of them may receive the same error.
    """

    def __init__(
        self,
        message: str,
        *,
        written: Sequence[tuple[str, str]],
        copies: Sequence[Entry],
    ) -> None:
        super().__init__(message)
        self.written = tuple(written)
        self.copies = tuple(copies)
        self.redrained = False


class DurabilityError(PublishError):
    """An append was written on the server that took it, but fewer replicas than asked
    acknowledged it in time (Redis ``WAIT``, the ``wait_replicas`` option of
    ``redis+cluster://``).

    The entries **are** in the stream (``entry_ids``, in the order given) and readers may see
    them; they may yet be lost if that server fails before they reach a replica. Sending them
    again writes them twice. ``acked`` is how many replicas acknowledged, ``wanted`` how many
    were asked for.
    """

    def __init__(
        self, message: str, *, acked: int, wanted: int, entry_ids: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.acked = acked
        self.wanted = wanted
        self.entry_ids = tuple(entry_ids)


class DecodeError(StreamsinkError, ValueError):
    """Bytes that cannot be decoded into an envelope.

    Raised by decoders with a message alone; reported by a subscription with ``stream_id``,
    ``entry_id`` and ``payload`` (the entry's bytes, None when it had none) set as well.
    """

    def __init__(
        self,
        message: str,
        *,
        stream_id: str | None = None,
        entry_id: str | None = None,
        payload: bytes | None = None,
    ) -> None:
        super().__init__(message)
        self.stream_id = stream_id
        self.entry_id = entry_id
        self.payload = payload


class AckError(StreamsinkError):
    """The backend did not take an acknowledgement (or nack/term/in_progress); retryable.
    ``entry_ids`` are the entries it was about (their deliveries stay as they were)."""

    def __init__(self, message: str, *, entry_ids: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.entry_ids = tuple(entry_ids)


class SubscriptionError(StreamsinkError):
    """A subscription ended because of a failure; ``__cause__`` holds the failure."""


class EntriesSkippedError(StreamsinkError):
    """Given to ``on_error`` (never raised) when a subscription finds that entries it had not
    read yet were trimmed from the stream: ``gap`` says which, and how many when known."""

    def __init__(self, gap: Gap) -> None:
        self.gap = gap
        super().__init__(gap.describe())


class DeadLetteredError(StreamsinkError):
    """Given to ``on_error`` (never raised) when a subscription dead-lettered an entry: written to
    ``target`` (None: dropped, because the entry was itself a dead letter) as ``letter`` (a
    :class:`~streamsink.DeadLetter` with the origin, attempts and reason), and acknowledged."""

    def __init__(self, message: str, *, letter: DeadLetter, target: str | None) -> None:
        super().__init__(message)
        self.letter = letter
        self.target = target


class DeadLetterFailedError(StreamsinkError):
    """Given to ``on_error`` (never raised) when a dead letter could not be written: ``letter``
    is what was to be written to ``target``; ``__cause__`` is the backend's error. Nothing was
    acknowledged: the entry stays pending and writing it is tried again when it is redelivered."""

    def __init__(self, message: str, *, letter: DeadLetter, target: str) -> None:
        super().__init__(message)
        self.letter = letter
        self.target = target


class StreamDestroyedError(StreamsinkError):
    """The stream was destroyed through this backend: this backend's handles on it raise this
    from then on (blocked reads at once), and subscriptions on it end cleanly. A clean end, not
    a failure to retry: it is no :class:`BackendUnavailableError`. A stream appended to later
    under the same id is a new stream whose ids may start over; handles opened before the
    destroy stay destroyed."""


class BackendUnavailableError(StreamsinkError):
    """The backend cannot be reached (connection lost, timeout); retrying may succeed."""


class GroupLostError(BackendUnavailableError):
    """The consumer group (or its stream) vanished under a consumer, e.g. the broker lost its
    data.

    The core answers by re-creating the group with ``GroupConsumer.ensure_group``, with backoff.
    """


class ConsumerDeletedError(BackendUnavailableError):
    """A group consumer was deleted from its group while it was open (by an operator, or by
    another service sharing the group, such as a Go pulse sink sweeping consumers it takes for
    dead). The backend dropped the entries that consumer held unacknowledged: they will not be
    redelivered, and acknowledging them acknowledged nothing.

    Raised once per deletion noticed, by the consumer's next call or by the ack that noticed it
    (after acknowledging whatever was still pending). Calling again proceeds normally: the
    consumer is re-created. It is a :class:`BackendUnavailableError`, so a subscription reports
    it to ``on_error`` and retries the call. ``stream_id``, ``group`` and ``consumer`` name the
    consumer.
    """

    def __init__(self, message: str, *, stream_id: str, group: str, consumer: str) -> None:
        super().__init__(message)
        self.stream_id = stream_id
        self.group = group
        self.consumer = consumer
