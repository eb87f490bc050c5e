"""What a :class:`~streamsink.testing.FaultyBackend` records and injects: the SPI methods it
knows, the calls it saw, and the rules (failures, lost replies, delays) a call is matched to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs

from .._exceptions import StreamsinkError

__all__ = ["METHODS", "READS", "ErrorSpec", "FaultyCall", "Rule", "SpiMethod"]

SpiMethod = Literal[
    "append",
    "open_group_consumer",
    "open_reader",
    "destroy",
    "entry_time",
    "ensure_group",
    "read_new",
    "read_own_pending",
    "claim_idle",
    "ack",
    "nack",
    "touch",
    "pending_summary",
    "term",
    "read",
]
"""The SPI calls a :class:`FaultyBackend` can fail or delay (``aclose`` always goes through)."""

METHODS: frozenset[str] = frozenset(SpiMethod.__args__)  # type: ignore[attr-defined]

#: the SPI calls that return records (the ones whose empty replies ``nonempty`` lets through)
READS: frozenset[str] = frozenset({"read_new", "read_own_pending", "claim_idle", "read"})

ErrorSpec = StreamsinkError | type[StreamsinkError]


@attrs.frozen
class FaultyCall:
    """One SPI call that reached a :class:`FaultyBackend`: the method, the stream it concerned
    (None for an append spanning several streams, or ``destroy`` of none), and what happened:
    ``"ok"``, ``"failed"`` (raised before reaching the inner backend) or ``"lost"`` (ran on the
    inner backend, then raised: a reply lost on its way)."""

    method: str
    stream_id: str | None
    outcome: Literal["ok", "failed", "lost"]


@attrs.define
class Rule:
    """One fault set on a FaultyBackend: which calls it matches, how many more, what it does."""

    method: str | None  # None: every method
    stream_id: str | None
    remaining: int | None  # None: until cleared
    error: ErrorSpec | None = None
    lose_reply: bool = False
    nonempty: bool = False
    delay: float = 0.0

    def matches(self, method: str, streams: Sequence[str]) -> bool:
        if self.remaining == 0 or (self.method is not None and self.method != method):
            return False
        return self.stream_id is None or self.stream_id in streams

    def take(self) -> None:
        if self.remaining is not None:
            self.remaining -= 1


def check_method(method: str | None) -> None:
    if method is not None and method not in METHODS:
        raise ValueError(f"unknown SPI method {method!r}; accepted: {', '.join(sorted(METHODS))}")


def error_of(rule: Rule, method: str, stream: str | None) -> StreamsinkError:
    """The error a failing call raises: the rule's instance, or its class naming the call."""
    error = rule.error
    assert error is not None
    if isinstance(error, type):
        where = f" on {stream!r}" if stream else ""
        return error(f"{method}{where}: failure injected by FaultyBackend")
    return error


def check_times(times: int | None) -> None:
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise ValueError(f"times must be a positive integer or None, got {times!r}")
