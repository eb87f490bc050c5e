"""``GroupSettler``: how manual-mode deliveries are settled (docs/contract.md rule 9).

It is the :class:`~streamsink._consuming._delivery.Settler` every :class:`Delivery` of one
subscription talks to, and keeps the ids handed out in a group and not settled yet (a lost read
reply must not deliver them a second time). In a fan-out reader there is nothing to settle:
``ack``, ``nack`` and ``in_progress`` do nothing, ``term`` only writes the dead letter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .._exceptions import AckError, DecodeError, StreamsinkError, SubscriptionError
from ..backend import Record
from ._acking import Acker
from ._calls import BackendCalls
from ._delivery import Delivery

__all__ = ["GroupSettler"]


class GroupSettler:
    """Settles the deliveries of one subscription; every method raises :class:`AckError` when
    the backend did not take it or the subscription is no longer entered."""

    __slots__ = (
        "_acker",
        "_calls",
        "_dead_letter",
        "_grouped",
        "_on_nack",
        "_stream_id",
        "observer",
        "open",
        "unsettled",
    )

    def __init__(
        self,
        *,
        stream_id: str,
        acker: Acker,
        calls: BackendCalls,
        grouped: bool,
        dead_letter: Callable[[Record, str], Awaitable[bool]],
        on_nack: Callable[[], None],
    ) -> None:
        """``grouped``: the subscription reads through a group (else there is nothing to ack);
        ``dead_letter(record, reason)`` writes a dead letter and acks it (False: not written);
        ``on_nack()`` runs after a nack succeeded (the pump then claims soon)."""
        self._stream_id = stream_id
        self._acker = acker
        self._calls = calls
        self._dead_letter = dead_letter
        self._grouped = grouped
        self._on_nack = on_nack
        #: the subscription is entered (``Lifecycle.entered``), kept so by the subscription: a
        #: flag rather than a call, as every ack reads it
        self.open = False
        #: manual group mode: ids delivered and not settled yet
        self.unsettled: set[str] = set()
        #: told of each settled delivery (``"ack"``, ``"nack"``, ``"term"``) when an instrument
        #: watches the subscription
        self.observer: Callable[[Delivery, str], None] | None = None

    def delivery(self, record: Record, event: Any, error: DecodeError | None) -> Delivery:
        """The :class:`Delivery` of ``record`` (``event`` decoded, or ``error`` why not)."""
        if self._grouped:
            self.unsettled.add(record.entry_id)
        payload = record.payload
        return Delivery(
            self,
            event=event,
            decode_error=error,
            raw_payload=payload if payload is not None else b"",
            name=record.name,
            entry_id=record.entry_id,
            stream_id=self._stream_id,
            delivery_count=record.delivery_count,
            topic=record.topic,
        )

    def _require_open(self, what: str, delivery: Delivery) -> None:
        if not self.open:
            raise AckError(
                f"cannot {what} {delivery.entry_id}: the subscription is closed; the entry "
                "stays pending",
                entry_ids=[delivery.entry_id],
            )

    async def ack(self, delivery: Delivery) -> None:
        self._require_open("ack", delivery)
        if not self._grouped:
            if self.observer is not None:
                self.observer(delivery, "ack")
            return
        try:
            await self._acker.submit([delivery.entry_id])
        except SubscriptionError as exc:
            raise AckError(
                f"ack of {delivery.entry_id} failed: {exc}", entry_ids=[delivery.entry_id]
            ) from exc
        self.unsettled.discard(delivery.entry_id)
        if self.observer is not None:
            self.observer(delivery, "ack")

    async def nack(self, delivery: Delivery) -> None:
        self._require_open("nack", delivery)
        consumer = self._calls.consumer
        if consumer is not None:
            await self._settle_call(consumer.nack, delivery, "nack")
            self.unsettled.discard(delivery.entry_id)
            self._on_nack()
        if self.observer is not None:
            self.observer(delivery, "nack")

    async def in_progress(self, delivery: Delivery) -> None:
        self._require_open("renew", delivery)
        consumer = self._calls.consumer
        if consumer is None:
            return
        await self._settle_call(consumer.touch, delivery, "in_progress")

    async def term(self, delivery: Delivery, reason: str) -> None:
        self._require_open("term", delivery)
        record = Record(
            delivery.entry_id, delivery.name, delivery.raw_payload, None, delivery.delivery_count
        )
        try:
            written = await self._dead_letter(record, reason)
        except SubscriptionError as exc:
            raise AckError(
                f"term of {delivery.entry_id} failed: {exc}", entry_ids=[delivery.entry_id]
            ) from exc
        if not written:
            raise AckError(
                f"term of {delivery.entry_id} failed: its dead letter could not be written; "
                "the entry stays pending",
                entry_ids=[delivery.entry_id],
            )
        self.unsettled.discard(delivery.entry_id)
        if self.observer is not None:
            self.observer(delivery, "term")

    @staticmethod
    async def _settle_call(
        fn: Callable[[Sequence[str]], Awaitable[None]], delivery: Delivery, what: str
    ) -> None:
        try:
            await fn([delivery.entry_id])
        except StreamsinkError as exc:
            raise AckError(
                f"{what} of {delivery.entry_id} failed: {exc}", entry_ids=[delivery.entry_id]
            ) from exc
