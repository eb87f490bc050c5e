"""``SubscriptionStatistics``: what one subscription counted, and the live counters behind it."""

from __future__ import annotations

import attrs

__all__ = ["Counters", "SubscriptionStatistics"]


@attrs.frozen
class SubscriptionStatistics:
    """Counters of one subscription (only ever grow)."""

    #: entries read from the backend (first deliveries and redeliveries)
    received: int
    #: entries read with a delivery count above 1
    redelivered: int
    #: entries acknowledged
    acknowledged: int
    #: entries that could not be decoded
    decode_errors: int
    #: entries written to the dead-letter stream (or dropped when there is none)
    dead_lettered: int
    #: backend calls retried after the backend was unreachable
    retries: int
    #: consumer groups re-created after they vanished
    groups_recreated: int
    #: entries trimmed from the stream before this subscription (or its group) read them, as far
    #: as the backend could count them (see ``gaps``)
    skipped: int = 0
    #: losses found (each reported to ``on_error`` as :class:`EntriesSkippedError`); one whose
    #: size the backend could not tell adds to this but not to ``skipped``
    gaps: int = 0
    #: read-ahead entries not handed to the application because their lease ran out first (the
    #: process was stopped, or the application took nothing for a grace period): the group may
    #: have given them to another consumer, so they are left to it
    expired: int = 0
    #: own pending entries fetched again after a read whose reply was lost
    recovered: int = 0
    #: dead letters that could not be written; their entries stay pending and are tried again
    dead_letter_failures: int = 0
    #: entries read but not handed to the application because the topic filter
    #: (``SubscriberOptions.topic``/``topic_pattern``) dropped them; a group acknowledges them
    #: (they count in ``acknowledged`` too), a fan-out reader just skips them
    filtered: int = 0
    #: consumers of the group this subscription removed because they held nothing and were idle
    #: past ``SubscriberOptions.reap_idle``
    consumers_reaped: int = 0


@attrs.define
class Counters:
    """The live counters behind :class:`SubscriptionStatistics`, shared by the engine's parts
    (each counts what it does)."""

    received: int = 0
    redelivered: int = 0
    acknowledged: int = 0
    decode_errors: int = 0
    dead_lettered: int = 0
    retries: int = 0
    groups_recreated: int = 0
    skipped: int = 0
    gaps: int = 0
    expired: int = 0
    recovered: int = 0
    dead_letter_failures: int = 0
    filtered: int = 0
    consumers_reaped: int = 0

    def snapshot(self) -> SubscriptionStatistics:
        return SubscriptionStatistics(**attrs.asdict(self))
