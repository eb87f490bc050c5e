"""What a backend declares it can do."""

from __future__ import annotations

import math

import attrs

from .._exceptions import ConfigurationError

__all__ = ["Capabilities"]


@attrs.frozen
class Capabilities:
    """What a backend can show. The core reads it once per subscription to decide which SPI
    calls to make; the conformance suite skips checks by these flags, never by name.

    .. attribute:: consumer_groups   groups with acks and pending entries
    .. attribute:: fan_out           readers that see every entry and leave no state behind
    .. attribute:: redelivery        an entry delivered in a group and not acknowledged within the
       grace period given to :meth:`~Backend.open_group_consumer` is delivered again, with its
       delivery count raised; ``nack`` and ``touch`` work. Without it the core never calls
       ``claim_idle``, ``nack`` nor ``touch``.
    .. attribute:: claims            redelivery is driven by the core: it calls ``claim_idle``
       every claim interval to take over idle entries. False: the backend redelivers idle
       entries by itself, through ``read_new`` (a broker with server-side redelivery), and
       ``claim_idle`` is never called. Meaningless without ``redelivery``.
    .. attribute:: own_pending       a consumer's pending entries belong to it by name and outlive
       its handle: ``read_own_pending`` gives them back to a consumer opened again under the
       same name (after a restart, or to recover a lost read reply). Without it the core never
       calls ``read_own_pending``; what a consumer held is redelivered after the grace period.
    .. attribute:: term              the group consumer has a native ``term``
       (:class:`TerminatingGroupConsumer`): the core calls it instead of ``ack`` when it has
       dead-lettered an entry.
    .. attribute:: pending_summary   the group consumer has ``pending_summary``
       (:class:`SummarizingGroupConsumer`): with ``claims``, the core asks it, about once per
       grace period per group and process, whether anything pending can be idle past the grace
       period, and calls ``claim_idle`` only then (and at once after a nack), from one
       subscription of the group on behalf of the process. Its reads may then block for up to
       ``SubscriberOptions.max_block`` (default 30 s) rather than a claim interval; a blocked
       ``read_new`` is cancelled (anyio cancellation) when a claim is due. Without it every
       subscription calls ``claim_idle`` every claim interval.
    .. attribute:: entry_times       the backend has ``entry_time`` (:class:`TimedBackend`): the
       time an entry was appended, the time ``StartPosition.at`` compares with.
    .. attribute:: stream_info       the backend has ``stream_info`` (:class:`InspectingBackend`):
       a stream's length, first and last ids and trimming, and what a resume id means on it
       (an SSE gateway tells a trimmed resume from a stream that was re-created or lost). Off
       by default: a backend that does not know of it declares nothing it lacks.
    .. attribute:: operations        the backend is an :class:`OperableBackend` (it needs
       ``stream_info``): it lists streams, groups, consumers and pending entries, deletes idle
       consumers that hold nothing, and trims streams exactly, for operator tools (the
       ``streamsink`` commands ``streams``, ``groups``, ``pending``, ``consumers``, ``trim``,
       ``dlq``). The core never calls it. Off by default.
    .. attribute:: trim              streams are trimmed to an approximate maximum length
    .. attribute:: destroy_ends_subscriptions  ``destroy`` ends live subscriptions cleanly
    .. attribute:: trio              runs under trio as well as asyncio
    .. attribute:: persistent        entries outlive the process
    .. attribute:: reports_gaps      reads return a :class:`RecordBatch` naming the entries that
       were trimmed before the reader (or its group) got to them
    .. attribute:: shared_reads      the backend reads many streams at once
       (:class:`~streamsink.backend.SharedReadBackend`): the core's fan-out hub then serves every
       fan-out subscription of the process through a few shared reads instead of one reader each
       (``SubscriberOptions.shared_reads`` opts out). Without it the core opens a
       :class:`StreamReader` per fan-out subscription.
    .. attribute:: claim_interval    seconds between the core's ``claim_idle`` scans that the
       backend suggests (used unless ``SubscriberOptions.claim_interval`` is set); None: the
       core's default, 0.5 s.
    """

    consumer_groups: bool = True
    fan_out: bool = True
    redelivery: bool = True
    trim: bool = True
    destroy_ends_subscriptions: bool = True
    trio: bool = False
    persistent: bool = False
    reports_gaps: bool = False
    claims: bool = True
    own_pending: bool = True
    term: bool = False
    pending_summary: bool = False
    entry_times: bool = False
    stream_info: bool = False
    operations: bool = False
    shared_reads: bool = False
    claim_interval: float | None = attrs.field(default=None)

    @claim_interval.validator
    def _check_claim_interval(
        self, attribute: attrs.Attribute[float | None], value: object
    ) -> None:
        # Checked here so that a bad suggestion fails where the backend declares it, not in
        # the first subscription's pump.
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigurationError(f"claim_interval must be seconds or None, got {value!r}")
        if not (value > 0 and math.isfinite(value)):
            raise ConfigurationError(f"claim_interval must be positive and finite, got {value!r}")
