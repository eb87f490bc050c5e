"""The hooks an instrumentation (tracing) plugs into: what a sink and a subscription tell it.

The core knows no tracing library: :mod:`streamsink.otel` implements these protocols with
OpenTelemetry, and anything else may (a test double, another tracer). With no instrument set,
the sink and the subscriptions make no call at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .backend import Entry

__all__ = ["ProcessObservation", "SendObservation", "SinkInstrument", "SubscriberInstrument"]


class SendObservation(Protocol):
    """One ``send``/``send_many`` being observed."""

    @property
    def entries(self) -> Sequence[Entry]:
        """The entries to write instead of the ones given (e.g. with a trace context added to
        each envelope), same streams, names and order."""
        ...

    def end(self, entry_ids: Sequence[str] | None, error: BaseException | None) -> None:
        """The send ended: written under ``entry_ids``, or failed with ``error`` (then it may or
        may not be written). Must not raise."""
        ...


class SinkInstrument(Protocol):
    """Given as ``SinkOptions.instrument``."""

    def start_send(self, entries: Sequence[Entry]) -> SendObservation:
        """A send of ``entries`` (validated and encoded) starts. Must not raise."""
        ...


class ProcessObservation(Protocol):
    """One delivery in the application's hands."""

    def end(self, outcome: str, error: BaseException | None = None) -> None:
        """Its handling ended: ``outcome`` is ``"ack"``, ``"nack"``, ``"term"``, ``"left"`` (the
        application left it pending: an exception, a cancel, the subscription closed) or
        ``"done"`` (a fan-out reader moved on). Called once. Must not raise."""
        ...


class SubscriberInstrument(Protocol):
    """Given as ``SubscriberOptions.instrument``."""

    def start_process(
        self,
        *,
        stream_id: str,
        group: str | None,
        consumer: str | None,
        entry_id: str,
        delivery_count: int | None,
        envelope: bytes | None,
    ) -> ProcessObservation:
        """An entry (``envelope``: its raw payload, None when it has none) is handed to the
        application; ``delivery_count`` is known in manual mode (None in auto mode). Must not
        raise."""
        ...
