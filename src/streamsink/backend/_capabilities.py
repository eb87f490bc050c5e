"""What a backend declares it can do."""

from __future__ import annotations

import attrs

__all__ = ["Capabilities"]


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
