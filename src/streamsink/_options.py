"""``SubscriberOptions``: how a subscriber joins, buffers, decodes, retries and dead-letters."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs

from ._envelope import decode_envelope
from ._events import Event
from ._exceptions import ConfigurationError, StreamsinkError
from ._instrument import SubscriberInstrument
from ._streams import lone_surrogate, shown, validate_name
from ._topics import compile_topic_pattern
from .backend import StartPosition
from .backend.options import OptionValidator as Validator
from .backend.options import option_rule as rule

__all__ = ["DEFAULT_GROUP", "SubscriberOptions", "default_dead_letter_stream"]

DEFAULT_GROUP = "loom_mcp_subscriber"
DEFAULT_BUFFER_BYTES = 16 * 1024 * 1024


def default_dead_letter_stream(stream_id: str) -> str:
    """``<stream id>:dlq``, where entries that cannot be processed end up."""
    return f"{stream_id}:dlq"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_seconds(value: object) -> bool:
    """A finite positive number of seconds (not a bool)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _name_or_none(kind: str, expected: str) -> Validator:
    """A validator of a ``kind`` name (or None): the rules every backend applies at open
    (:func:`validate_name`), checked when the options are built."""

    def validate(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        try:
            validate_name(kind, value)
        except ConfigurationError as exc:
            why = f": {exc}" if isinstance(value, str) and value else ""
            raise ConfigurationError(
                f"{type(inst).__name__}.{attribute.name}={shown(value)} is invalid: "
                f"expected {expected}{why}"
            ) from None

    return validate


def _validate_topic(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """``topic``: None, or the exact topic to select; never ``""``, which pulse reads as "no
    filter" and the rule "an entry without a topic has topic ''" as "only those": ambiguous."""
    if value is None or (isinstance(value, str) and value and lone_surrogate(value) is None):
        return
    if value == "":
        why = (
            "None for no filter, or topic_pattern='^$' for the entries that have no topic "
            "('' is ambiguous: pulse reads it as no filter)"
        )
    elif isinstance(value, str):
        why = "a topic without lone surrogates (no entry can carry one), or None"
    else:
        why = "a topic (a non-empty string), or None for no filter"
    raise ConfigurationError(
        f"{type(inst).__name__}.{attribute.name}={shown(value)} is invalid: expected {why}"
    )


def _validate_topic_pattern(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """``topic_pattern``: None, or an RE2 pattern (compiled now, so a bad one fails here)."""
    if value is None:
        return
    prefix = f"{type(inst).__name__}.{attribute.name}={shown(value)} is invalid"
    if not isinstance(value, str):
        raise ConfigurationError(
            f"{prefix}: expected a regular expression (RE2 syntax) as a string, or None"
        )
    try:
        compile_topic_pattern(value)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{prefix}: {exc}") from None


def _seconds_or_none(expected: str) -> Validator:
    """A validator of None or :func:`is_seconds`, whose error says ``expected`` (what None means
    differs from option to option)."""
    return rule(lambda v: v is None or is_seconds(v), expected)


_SECONDS = rule(is_seconds, "a positive number of seconds")
_SECONDS_OR_NONE = _seconds_or_none("a positive number of seconds, or None for the default")
_CALLABLE_OR_NONE = rule(lambda v: v is None or callable(v), "a callable or None")


@attrs.frozen(kw_only=True)
class SubscriberOptions:
    """Options of a :class:`StreamSubscriber`; every value is checked when the options are built.

    - ``group``: consumer group name (default ``loom_mcp_subscriber``, loom-mcp's default, so a
      Python service can take over a Go one's group and its pending entries). Subscribers
      sharing a group on a stream split its events: **two services that both take the default
      each get only part of every session**, whether both are Python or one is Go. Give every
      service its own group; keep the default for the replicas of one service
      (docs/interop.md). ``None`` makes a fan-out reader: it sees every event, acks nothing and
      leaves no state in the backend.
    - ``consumer_name``: this consumer's name in the group. ``None`` (default) generates a unique
      one. Give a stable name to have a restarted process first get back its own pending entries.
    - ``buffer``: events read ahead of the application (default 64). Reading stops while it is
      full, so a slow consumer slows reading instead of growing memory.
    - ``buffer_bytes``: bytes of payload read ahead of the application (default 16 MiB). Reading
      also stops while the read-ahead holds this much, and reads ask for fewer entries when
      entries are large, so a stuck handler behind large entries holds about this much (and at
      least one batch), not ``buffer`` times the largest entry.
    - ``fetch_count``: most entries asked of the backend per read (default: ``buffer``).
    - ``decoder``: bytes -> event (default :func:`decode_envelope`). Any exception it raises is
      reported as a :class:`DecodeError`.
    - ``start``: where a new group or reader starts (default newest). An existing group keeps its
      stored position, whatever ``start`` says.
    - ``topic``: hand the application only entries with exactly this topic (pulse's
      ``WithSinkTopic``/``WithReaderTopic``). Default None: every entry.
    - ``topic_pattern``: hand it only entries whose topic this regular expression matches
      anywhere (unanchored, as ``re.search`` and pulse's ``WithSinkTopicPattern``); write
      ``^...$`` to match whole topics. The syntax is RE2's, as in pulse: what RE2 refuses
      (backreferences, lookarounds, ...) is refused here too, with ``topic pattern must be a valid
      regex: ...``; docs/interop.md lists the few remaining differences). An entry without a
      topic is matched as the topic ``""`` (``^$`` selects those). ``topic`` wins if both are
      set; ``""`` filters nothing.

      Filtering happens after the read: the stream keeps every entry, and other groups and
      readers still get them. Filtered-out entries are never handed to the application, nor
      decoded; they count in ``Subscription.statistics().filtered``. **In a group they are
      acknowledged** (with the next acks, in the same round trips), so they do not stay pending
      as pulse leaves them: a group's filter belongs to the whole group, and every consumer of
      it should use the same one (an entry one consumer filters out is gone for the others).
      Dead-letter subscriptions (``subscribe_dead_letters``) are never filtered.
    - ``ack_grace_period``: seconds an entry may stay delivered but unacknowledged before the
      group redelivers it, to this or another consumer (default 20, as pulse). Events waiting in
      the buffer have their lease renewed while the application keeps taking events; the one
      a handler works on is not (call ``Delivery.in_progress()`` in manual mode).
    - ``claim_interval``: seconds between scans for such entries (default: the backend's
      suggestion, else 0.5 s as pulse). On a backend that summarizes its pending entries
      (Redis, memory) it is the shortest period between looks at the group's pending entries:
      they scan only when something can be idle past the grace period, once per group and
      process, so a crashed consumer's entries still come back within ``ack_grace_period`` plus
      about one claim interval.
    - ``max_deliveries``: deliveries after which an entry still not acknowledged goes to the
      dead-letter stream instead (default 5; 0 = never).
    - ``dead_letter_stream``: stream id -> dead-letter stream id (default ``<stream id>:dlq``);
      ``None`` drops such entries after reporting them (they are still acknowledged).
    - ``on_error``: called with each non-terminal error (undecodable entries, dead-lettering,
      retries while the backend is unreachable). It must not block; errors it raises, and errors
      when there is no callback, are logged and counted in ``StreamSubscriber.dropped_errors``.
    - ``reconnect_timeout``: seconds the backend may stay unreachable before the subscription
      ends with :class:`SubscriptionError` (default 60). Retries use jittered exponential backoff.
    - ``max_block``: longest single blocking read in seconds (default: 60 s in a group on a
      backend that summarizes its pending entries, the claim interval in another group, 5 s
      for a fan-out reader of its own, 60 s for one on shared reads). A read waits that long
      only while there is nothing else to do: it ends early to renew leases, for a claim, or
      when the subscription is closed.
    - ``shared_reads``: a fan-out subscription (``group=None``) reads together with every other
      fan-out subscription of the process on the same backend, through a few shared
      multi-stream reads, on backends that declare ``Capabilities.shared_reads`` (default True).
      False gives it a reader (and on Redis a connection) of its own. Groups ignore it. Shared
      readers of one stream that decode with the default decoder in auto mode are handed the
      same :class:`StreamEvent` object (decoded once for all): it is frozen, but its
      ``payload`` is the one object too, so treat it as read-only (``attrs.evolve`` to change).
    - ``renew_while_handling``: manual mode in a group: keep the lease of each delivery the
      application holds renewed, every half grace period, until it is settled or has been held
      this many seconds, so a handler longer than ``ack_grace_period`` is not redelivered to
      another consumer half-way through (default None: only ``Delivery.in_progress()`` renews).
      Past the bound a hung handler loses its lease and the entry is redelivered, as without
      it. Ignored in auto mode and by fan-out readers.
    - ``reap_idle``: in a group, remove the group's consumers that hold nothing and have been
      idle (no read, no claim) for this many seconds: crashed or retired processes, which
      otherwise stay listed forever (default None: never). A consumer that holds entries is
      never removed (one atomic check-and-delete on the backend). Checked about every
      ``reap_idle / 2`` seconds, once per group and process however many subscriptions share
      it; what it removed counts in ``statistics().consumers_reaped``. Needs a backend that
      declares ``Capabilities.operations`` (memory, Redis, NATS); on another one subscribing raises
      :class:`ConfigurationError`. Fan-out readers ignore it.
    - ``instrument``: a :class:`~streamsink.SubscriberInstrument` told about every
      delivery from hand-out until the application is done with it (e.g.
      :class:`streamsink.otel.Tracing`: a consumer span per delivery, in the producer's trace);
      default None, no calls.
    """

    group: str | None = attrs.field(
        default=DEFAULT_GROUP,
        validator=_name_or_none("group", "a group name, or None for fan-out"),
    )
    consumer_name: str | None = attrs.field(
        default=None,
        validator=_name_or_none("consumer", "a name, or None for a generated one"),
    )
    buffer: int = attrs.field(
        default=64, validator=rule(lambda v: _is_int(v) and v >= 1, "an integer >= 1")
    )
    buffer_bytes: int = attrs.field(
        default=DEFAULT_BUFFER_BYTES,
        validator=rule(lambda v: _is_int(v) and v >= 1, "a number of bytes >= 1"),
    )
    fetch_count: int | None = attrs.field(
        default=None,
        validator=rule(lambda v: v is None or (_is_int(v) and v >= 1), "an integer >= 1 or None"),
    )
    decoder: Callable[[bytes], Event] = attrs.field(
        default=decode_envelope, validator=rule(callable, "a callable taking bytes")
    )
    start: StartPosition = attrs.field(
        factory=StartPosition.newest,
        validator=rule(
            lambda v: isinstance(v, StartPosition),
            "StartPosition.newest(), .oldest(), .after(entry_id) or .at(datetime)",
        ),
    )
    topic: str | None = attrs.field(default=None, validator=_validate_topic)
    topic_pattern: str | None = attrs.field(default=None, validator=_validate_topic_pattern)
    ack_grace_period: float = attrs.field(default=20.0, validator=_SECONDS)
    claim_interval: float | None = attrs.field(default=None, validator=_SECONDS_OR_NONE)
    max_deliveries: int = attrs.field(
        default=5,
        validator=rule(lambda v: _is_int(v) and v >= 0, "an integer >= 1, or 0 for no limit"),
    )
    dead_letter_stream: Callable[[str], str] | None = attrs.field(
        default=default_dead_letter_stream, validator=_CALLABLE_OR_NONE
    )
    on_error: Callable[[StreamsinkError], object] | None = attrs.field(
        default=None, validator=_CALLABLE_OR_NONE
    )
    reconnect_timeout: float = attrs.field(default=60.0, validator=_SECONDS)
    max_block: float | None = attrs.field(default=None, validator=_SECONDS_OR_NONE)
    shared_reads: bool = attrs.field(
        default=True, validator=rule(lambda v: isinstance(v, bool), "True or False")
    )
    renew_while_handling: float | None = attrs.field(
        default=None,
        validator=_seconds_or_none(
            "a number of seconds > 0, or None to renew only on Delivery.in_progress()"
        ),
    )
    reap_idle: float | None = attrs.field(
        default=None,
        validator=_seconds_or_none(
            "a number of seconds > 0, or None to never remove idle consumers"
        ),
    )
    instrument: SubscriberInstrument | None = attrs.field(
        default=None,
        validator=rule(
            lambda v: v is None or callable(getattr(v, "start_process", None)),
            "an object with start_process(...) (e.g. streamsink.otel.Tracing()), or None",
        ),
    )
