"""``ProcessTracker``: what a subscription tells its instrument (``SubscriberOptions.instrument``)
about the deliveries in the application's hands: one observation each, from hand-out to the
moment the application is done with it (auto mode: it asks for the next one, or leaves) or
settles it (manual mode)."""

from __future__ import annotations

from typing import Any

from .._instrument import ProcessObservation, SubscriberInstrument
from ._delivery import Delivery
from ._settings import Settings

__all__ = ["ProcessTracker"]


class ProcessTracker:
    """The open observations of one subscription. Never raises into the engine: an instrument
    is told, it does not steer."""

    __slots__ = ("_current", "_done", "_instrument", "_open", "_settings")

    def __init__(self, instrument: SubscriberInstrument, settings: Settings) -> None:
        self._instrument = instrument
        self._settings = settings
        # Auto mode's event in the application's hands leaves the way it is finished: acked in
        # a group, passed over by a fan-out reader.
        self._done = "ack" if settings.group is not None else "done"
        self._current: ProcessObservation | None = None
        self._open: dict[Delivery, ProcessObservation] = {}

    def handed(self, item: Any, entry_id: str) -> None:
        """``item`` (an event, or a :class:`Delivery`) goes to the application."""
        settings = self._settings
        if isinstance(item, Delivery):
            envelope: bytes | None = item.raw_payload or None
            count: int | None = item.delivery_count
        else:
            envelope = getattr(item, "source", None)
            count = None
        observation = self._instrument.start_process(
            stream_id=settings.stream_id,
            group=settings.group,
            consumer=settings.consumer_name if settings.group is not None else None,
            entry_id=entry_id,
            delivery_count=count,
            envelope=envelope if isinstance(envelope, bytes) else None,
        )
        if isinstance(item, Delivery):
            self._open[item] = observation
        else:
            self._current = observation

    def finished(self) -> None:
        """Auto mode: the application asked for the next event."""
        current, self._current = self._current, None
        if current is not None:
            current.end(self._done)

    def settled(self, delivery: Delivery, outcome: str) -> None:
        """Manual mode: ``delivery`` was acked, nacked or termed."""
        observation = self._open.pop(delivery, None)
        if observation is not None:
            observation.end(outcome)

    def close(self, error: BaseException | None) -> None:
        """The subscription is left: the event in hand is finished if it was left normally,
        and whatever is unsettled stays pending."""
        current, self._current = self._current, None
        if current is not None:
            current.end(self._done if error is None else "left", error)
        while self._open:
            _, observation = self._open.popitem()
            observation.end("left", error)
