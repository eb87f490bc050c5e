"""``Delivery``: one entry handed to a manual-mode consumer, and the :class:`Settler` it asks to
settle it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from .._events import Event
from .._exceptions import DecodeError

if TYPE_CHECKING:
    from ..backend import Gap

__all__ = ["Delivery", "Settler"]


class Settler(Protocol):
    """What settles deliveries: the subscription that handed them out (docs/contract.md rule 9).
    Each method raises :class:`~streamsink.AckError` when the backend did not take it or the
    subscription is closed; the delivery then stays unsettled and may be settled again."""

    async def ack(self, delivery: Delivery) -> None: ...
    async def nack(self, delivery: Delivery) -> None: ...
    async def term(self, delivery: Delivery, reason: str) -> None: ...
    async def in_progress(self, delivery: Delivery) -> None: ...


class Delivery:
    """An entry delivered in manual mode. Settle it with exactly one of ``ack``, ``nack``, ``term``.

    - ``event`` is the decoded event, or None when decoding failed (then ``decode_error`` says why
      and ``raw_payload`` holds the bytes as read).
    - ``delivery_count`` is 1 on first delivery and grows with each redelivery.
    - ``topic`` is the entry's topic (pulse field ``t``), None when it has none.
    - ``gap`` is set (a :class:`~streamsink.Gap`) when entries right before this one were trimmed
      from the stream before the subscription read them; None otherwise.
    - ``ack()`` is idempotent once it succeeded and may be retried after it raised
      :class:`AckError`. ``nack()`` makes the entry available for redelivery now. ``term(reason)``
      dead-letters it now. ``in_progress()`` renews the lease of a long-running handler so the
      entry is not redelivered while the handler still runs.

    Fan-out (group-less) deliveries need no settling: ``ack``, ``nack`` and ``in_progress`` do
    nothing there, ``term`` only writes the dead letter.
    """

    __slots__ = (
        "_settled",
        "_settler",
        "decode_error",
        "delivery_count",
        "entry_id",
        "event",
        "gap",
        "name",
        "raw_payload",
        "stream_id",
        "topic",
    )

    def __init__(
        self,
        settler: Settler,
        *,
        event: Event | None,
        decode_error: DecodeError | None,
        raw_payload: bytes,
        name: str | None,
        entry_id: str,
        stream_id: str,
        delivery_count: int,
        topic: str | None = None,
    ) -> None:
        self._settler = settler
        self._settled = False
        self.event = event
        self.decode_error = decode_error
        self.raw_payload = raw_payload
        self.name = name
        self.entry_id = entry_id
        self.stream_id = stream_id
        self.delivery_count = delivery_count
        self.topic = topic
        self.gap: Gap | None = None

    @property
    def settled(self) -> bool:
        """True once ``ack``, ``nack`` or ``term`` succeeded."""
        return self._settled

    async def ack(self) -> None:
        """Acknowledge; returns once the backend has the ack.

        :raises AckError: the backend did not take it (retry later), or the subscription is closed.
        """
        if self._settled:
            return
        await self._settler.ack(self)
        self._settled = True

    async def nack(self) -> None:
        """Give the entry back for redelivery now (to this or another consumer of the group).

        :raises AckError: the backend did not take it, or the subscription is closed.
        """
        if self._settled:
            return
        await self._settler.nack(self)
        self._settled = True

    async def term(self, reason: str = "terminated by the consumer") -> None:
        """Dead-letter the entry now, with ``reason`` in its provenance, and acknowledge it.

        :raises AckError: the backend did not take it, or the subscription is closed.
        """
        if self._settled:
            return
        await self._settler.term(self, reason)
        self._settled = True

    async def in_progress(self) -> None:
        """Renew the lease: restart the ``ack_grace_period`` for this entry.

        :raises AckError: the backend did not take it, or the subscription is closed.
        """
        if not self._settled:
            await self._settler.in_progress(self)

    def __repr__(self) -> str:
        what = (
            f"event={self.event!r}"
            if self.decode_error is None
            else f"decode_error={self.decode_error}"
        )
        return (
            f"<Delivery {self.stream_id}/{self.entry_id} #{self.delivery_count} {what}"
            f"{' settled' if self._settled else ''}>"
        )
