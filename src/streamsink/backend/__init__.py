"""The backend SPI: what a plugin implements so streamsink can run on it (docs/writing-a-backend.md).

A backend is small: append entries, run a consumer group (read new entries, read its own pending
entries, claim idle entries of the group, ack, nack, touch, optionally terminate), open a fan-out
reader, destroy a stream, close; optionally tell an entry's time, describe a stream, and
read many streams at once (:class:`SharedReads`, for the core's fan-out hub), and list and
tidy streams for operators (:class:`OperableBackend`). Everything
else (envelopes, stream ids, decoding, ack policy, dead-lettering, retries, statistics)
lives once in the core, so every backend behaves the same.

Rules every implementation follows (the conformance suite in :mod:`streamsink.testing` checks them):

- Entry ids are assigned by the backend, returned as text, and ordered by the backend's own rule
  (strictly increasing per stream, in append order). They are opaque to the core, which never
  parses them.
- Errors leave the backend as :mod:`streamsink` errors, never as driver exceptions:
  :class:`~streamsink.BackendUnavailableError` for anything worth retrying (connection lost,
  timeout), :class:`GroupLostError` when a consumer group vanished under a consumer,
  :class:`StreamDestroyedError` when the stream was destroyed through this backend,
  :class:`BackendClosedError` after ``aclose()``, other
  :class:`~streamsink.StreamsinkError` subclasses for the rest.
- Every blocking call is cancellable at once (anyio cancellation), and leaves the handle usable
  or cleanly closed; nothing keeps running after ``aclose()``.

What a backend can do is declared in :class:`Capabilities`, which the core reads: it makes only
the calls the declared flags allow (``claim_idle`` with ``claims``, ``read_own_pending`` with
``own_pending``, ``term`` with ``term``, ``pending_summary`` with ``pending_summary``…), and
takes the backend's ``claim_interval`` suggestion unless ``SubscriberOptions.claim_interval`` is
set (default 0.5 s, as pulse).
"""

from __future__ import annotations

from ._capabilities import Capabilities
from ._errors import BackendClosedError, ClosedError, GroupLostError, StreamDestroyedError
from ._inspect import InspectingBackend, ResumeState, StreamInfo
from ._operate import ConsumerInfo, GroupInfo, OperableBackend, PendingInfo, TrimBound
from ._protocols import (
    DEFAULT_ACK_GRACE_PERIOD,
    Backend,
    BackendFactory,
    GroupConsumer,
    StreamReader,
    SummarizingGroupConsumer,
    TerminatingGroupConsumer,
    TimedBackend,
)
from ._records import Entry, Gap, PendingSummary, Record, RecordBatch
from ._shared import SharedCursor, SharedReadBackend, SharedReads, StreamBatch
from ._start import StartPosition
from ._url import BackendURL

__all__ = [
    "DEFAULT_ACK_GRACE_PERIOD",
    "Backend",
    "BackendClosedError",
    "BackendFactory",
    "BackendURL",
    "Capabilities",
    "ClosedError",
    "ConsumerInfo",
    "Entry",
    "Gap",
    "GroupInfo",
    "GroupConsumer",
    "GroupLostError",
    "InspectingBackend",
    "OperableBackend",
    "PendingInfo",
    "PendingSummary",
    "Record",
    "RecordBatch",
    "ResumeState",
    "SharedCursor",
    "SharedReadBackend",
    "SharedReads",
    "StartPosition",
    "StreamBatch",
    "StreamDestroyedError",
    "StreamInfo",
    "StreamReader",
    "SummarizingGroupConsumer",
    "TerminatingGroupConsumer",
    "TimedBackend",
    "TrimBound",
]
