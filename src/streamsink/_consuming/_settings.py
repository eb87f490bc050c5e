"""The settings of one subscription, resolved once when it is made.

Every number the consumer engine runs on is derived here, from the subscriber's options and the
backend's :class:`~streamsink.backend.Capabilities`, and nowhere else:

- ``fetch_count``: entries asked per read, ``SubscriberOptions.fetch_count`` or else ``buffer``;
- ``claim_interval``: seconds between scans for idle entries, ``SubscriberOptions.claim_interval``
  or else ``Capabilities.claim_interval``, or else 0.5 s as pulse;
- ``max_block``: longest blocking read, ``SubscriberOptions.max_block`` or else: in a group whose
  claims are scheduled from summaries (``summaries``), 30 s (a read is cancelled when a claim is
  due, and wakes early to renew leases); in another group, the claim interval (a read must
  return in time for the next scan); 5 s for a fan-out reader;
- ``renews``: whether the pump keeps the leases of its read-ahead (``touch``): only in a group,
  and only on a backend that declares ``redelivery`` (without it nothing is ever redelivered, so
  nothing read ahead can be taken by another consumer);
- ``claims``: whether the pump scans for idle entries (``claim_idle``): where it renews, and the
  backend declares ``claims`` (a backend that redelivers by itself hands redeliveries out through
  ``read_new``);
- ``summaries``: whether claims are scheduled from the group's pending summary, once per group
  and process (:mod:`._claim_group`): where the pump claims, and the backend declares
  ``pending_summary``;
- ``own_pending``: whether the pump asks for this consumer's own pending entries
  (``read_own_pending``) when it starts and after a lost read reply: only in a group, and only
  on a backend that declares ``own_pending``;
- ``dead_letter_stream``: where dead letters go (docs/contract.md rule 11), validated now;
- ``reap_idle``: the idle bound past which the group's empty consumers are removed, only in a
  group, refused on a backend that does not declare ``operations``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from .._deadletter import decode_dead_letter
from .._envelope import decode_envelope
from .._exceptions import ConfigurationError
from .._options import SubscriberOptions, default_dead_letter_stream
from .._streams import dead_letter_stream_id
from ..backend import Backend

__all__ = [
    "DEFAULT_CLAIM_INTERVAL",
    "SHARED_MAX_BLOCK",
    "Settings",
    "claim_interval_of",
    "resolve_settings",
]

#: pulse's idle-check period, used when neither the options nor the backend say otherwise
DEFAULT_CLAIM_INTERVAL = 0.5
#: a fan-out reader has no claim scan to wake for; it still returns now and then to notice
#: a close or a cancelled scope between reads on backends whose reads do not wake for that
_READER_MAX_BLOCK = 5.0
#: a group subscription whose claims come from summaries wakes for claims and leases only, so
#: an idle one costs a read per this many seconds (a backend may cut its reads shorter)
SHARED_MAX_BLOCK = 30.0


@attrs.frozen(slots=True, kw_only=True)
class Settings:
    """What one subscription runs on; see the module docstring for where each value comes from."""

    stream_id: str
    #: the consumer group, None for a fan-out reader
    group: str | None
    #: this consumer's name in the group (made up for a reader too, but unused there)
    consumer_name: str
    #: manual mode: the application settles :class:`~streamsink.Delivery` objects
    manual: bool
    #: a dead-letter subscription: items are :class:`~streamsink.DeadLetter` objects
    letters: bool
    fetch_count: int
    buffer: int
    buffer_bytes: int
    ack_grace_period: float
    claim_interval: float
    max_block: float
    renews: bool
    claims: bool
    summaries: bool
    own_pending: bool
    max_deliveries: int
    dead_letter_stream: str | None
    decoder: Callable[[bytes], Any]
    #: the default envelope decoder, which the engine inlines on its hot path
    fast_decode: bool
    #: remove the group's consumers idle this long that hold nothing (None: never)
    reap_idle: float | None = None


def claim_interval_of(options: SubscriberOptions, backend: Backend) -> float:
    """Seconds between claim scans: the option, else the backend's declared
    ``Capabilities.claim_interval``, else 0.5 s."""
    return float(
        options.claim_interval or backend.capabilities.claim_interval or DEFAULT_CLAIM_INTERVAL
    )


def resolve_settings(
    options: SubscriberOptions,
    backend: Backend,
    stream_id: str,
    *,
    consumer_name: str,
    claim_interval: float,
    manual: bool,
    letters: bool,
) -> Settings:
    """The settings of a subscription to ``stream_id``.

    :raises ConfigurationError: ``dead_letter_stream(stream_id)`` is not a valid stream id.
    """
    group = options.group
    capabilities = backend.capabilities
    renews = group is not None and capabilities.redelivery
    claims = renews and capabilities.claims
    summaries = claims and capabilities.pending_summary
    default_block = SHARED_MAX_BLOCK if summaries else claim_interval
    if group is None:
        default_block = _READER_MAX_BLOCK
    return Settings(
        stream_id=stream_id,
        group=group,
        consumer_name=consumer_name,
        manual=manual,
        letters=letters,
        fetch_count=options.fetch_count or options.buffer,
        buffer=options.buffer,
        buffer_bytes=options.buffer_bytes,
        ack_grace_period=options.ack_grace_period,
        claim_interval=claim_interval,
        max_block=options.max_block or default_block,
        renews=renews,
        claims=claims,
        summaries=summaries,
        own_pending=group is not None and capabilities.own_pending,
        max_deliveries=options.max_deliveries,
        dead_letter_stream=_dead_letter_target(options, stream_id, letters=letters),
        decoder=decode_dead_letter if letters else options.decoder,
        fast_decode=not letters and options.decoder is decode_envelope,
        reap_idle=_reap_idle(options, backend),
    )


def _reap_idle(options: SubscriberOptions, backend: Backend) -> float | None:
    """``reap_idle`` of a group subscription, refused where the backend cannot list consumers."""
    if options.group is None or options.reap_idle is None:
        return None
    if not backend.capabilities.operations:
        raise ConfigurationError(
            f"SubscriberOptions reap_idle={options.reap_idle!r} needs a backend that lists and "
            f"removes consumers (Capabilities.operations); {backend.description} does not"
        )
    return float(options.reap_idle)


def _dead_letter_target(options: SubscriberOptions, stream_id: str, *, letters: bool) -> str | None:
    """Where this subscription writes dead letters: ``dead_letter_stream(stream_id)``, validated
    now; none for a dead-letter subscription, nor (with the default naming) for a stream that is
    itself a dead-letter stream."""
    make = options.dead_letter_stream
    if letters or make is None:
        return None
    if make is default_dead_letter_stream and stream_id.endswith(":dlq"):
        return None
    target = dead_letter_stream_id(make, stream_id)
    if target == stream_id:
        return None
    return target
