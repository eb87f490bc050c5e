"""The consumer engine: what a :class:`~streamsink.Subscription` is made of, one rule per part.

- ``_subscription``: :class:`Subscription`, which wires the parts below together and runs the
  lifecycle (``_lifecycle``: ``NEW -> OPEN -> STOPPING -> CLOSED``);
- ``_settings``: every setting resolved once (fetch count, claim interval, longest block,
  whether to claim, the dead-letter stream), from the options and the backend's capabilities;
- ``_pump``: the task that reads the backend (own pending entries, new entries, idle claims);
- ``_readahead`` (on ``_handoff``): the bounded buffer between the pump and the application;
- ``_leases``: lease keeping of read-ahead, pure bookkeeping on an injected clock;
- ``_acking``: auto-acks and the acks of filtered entries and dead letters, coalesced;
- ``_calls``: resilient backend calls: backoff, group re-creation, retry counters;
- ``_intake``: the one decode-and-poison path: topic filter, decode, dead letters;
- ``_gaps``: entries trimmed before they were read, counted, reported and marked;
- ``_settling`` and ``_delivery``: manual mode's :class:`Delivery` and what settles it;
- ``_statistics``: :class:`SubscriptionStatistics` and the counters behind it.

Dependencies point one way: ``_subscription`` knows every part, ``_pump`` the parts it feeds,
and ``_delivery`` knows only its ``Settler`` protocol (``tests/test_import_cycles.py``).
"""

from __future__ import annotations

from ._delivery import Delivery, Settler
from ._settings import Settings, claim_interval_of, resolve_settings
from ._statistics import SubscriptionStatistics
from ._subscription import Subscription, SubscriptionOwner

__all__ = [
    "Delivery",
    "Settings",
    "Settler",
    "Subscription",
    "SubscriptionOwner",
    "SubscriptionStatistics",
    "claim_interval_of",
    "resolve_settings",
]
