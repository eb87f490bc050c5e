"""``Intake``: the one path from a record read to an item handed out, poison included.

Every record a subscription reads goes through :meth:`Intake.take_in`, in this order:

1. the topic filter (docs/contract.md rule 17): entries it drops are never decoded nor handed
   out; a group acknowledges them with its next acks;
2. in a group, an entry delivered more than ``max_deliveries`` times is dead-lettered (rule 11);
3. decoding: the default envelope decoder is inlined for first deliveries in auto mode (the hot
   path); whatever a decoder raises makes the entry poison, never the end of the subscription.
   In auto mode poison is reported and, in a group, dead-lettered; in manual mode it is handed
   out as a :class:`~streamsink.Delivery` with ``decode_error`` set.

``Delivery.term`` dead-letters through the same :meth:`Intake.dead_letter`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from .._deadletter import DEAD_LETTER_EVENT, DeadLetter, encode_dead_letter
from .._envelope import decode_entry
from .._events import set_event_topic
from .._exceptions import (
    ClosedError,
    DeadLetteredError,
    DeadLetterFailedError,
    DecodeError,
    StreamsinkError,
)
from .._options import SubscriberOptions
from .._sharing import SharedRecords
from .._topics import TopicFilter, topic_filter
from ..backend import Backend, Entry, Record, StreamDestroyedError
from ._acking import Acker
from ._settings import Settings
from ._settling import GroupSettler
from ._statistics import Counters

__all__ = ["Intake"]


class Intake:
    """Filters, decodes and dead-letters the records of one subscription."""

    __slots__ = (
        "_accepts",
        "_acker",
        "_backend",
        "_counters",
        "_report",
        "_settings",
        "_settler",
    )

    def __init__(
        self,
        settings: Settings,
        options: SubscriberOptions,
        *,
        backend: Backend,
        acker: Acker,
        settler: GroupSettler,
        counters: Counters,
        report: Callable[[StreamsinkError], None],
    ) -> None:
        self._settings = settings
        self._backend = backend
        self._acker = acker
        self._settler = settler
        self._counters = counters
        self._report = report
        # None (every entry handed out) unless a topic filter is set; dead letters carry no
        # topic, so a dead-letter subscription is never filtered.
        self._accepts: TopicFilter | None = (
            None if settings.letters else topic_filter(options.topic, options.topic_pattern)
        )

    @property
    def filters(self) -> bool:
        """A topic filter is set (a group then has acks to send in manual mode too)."""
        return self._accepts is not None

    async def take_in(self, records: Sequence[Record]) -> tuple[list[Any], list[str], int]:
        """The items to hand out for ``records`` (``(entry id, event)`` pairs in auto mode,
        :class:`~streamsink.Delivery` objects in manual mode), their entry ids, and the payload
        bytes of the records the filter kept.

        :raises SubscriptionError: a dead letter's ack failed past ``reconnect_timeout``.
        :raises StreamDestroyedError: the stream or its dead-letter stream was destroyed.
        """
        settings = self._settings
        # The common case, a first delivery of a good envelope in auto mode, is decoded inline;
        # everything else (redeliveries, custom decoders, manual mode, bad entries) goes
        # through `_prepare`.
        inline = settings.fast_decode and not settings.manual
        # A batch shared with other fan-out readers: what one of them decoded, the others hand
        # out as is (the same event object: events are frozen).
        memo = records.decoded if inline and type(records) is SharedRecords else None
        if self._accepts is not None:
            records = self._drop_filtered(records, self._accepts)
        stream_id = settings.stream_id
        batch: list[Any] = []
        ids: list[str] = []
        add, add_id, decode = batch.append, ids.append, decode_entry
        nbytes = 0
        # A Record is a NamedTuple: unpacking it is one step where reading its fields by name
        # is four (about 0.1 µs per entry).
        for record in records:
            entry_id, _name, payload, topic, delivery_count = record
            if payload is not None:
                nbytes += len(payload)
                if inline and delivery_count == 1:
                    if memo is not None:
                        item = memo.get(entry_id)
                        if item is not None:
                            add(item)
                            add_id(entry_id)
                            continue
                    try:
                        event = decode(payload, entry_id, stream_id)
                        if topic is not None:
                            set_event_topic(event, topic)
                        item = (entry_id, event)
                        if memo is not None:
                            memo[entry_id] = item
                        add(item)
                        add_id(entry_id)
                        continue
                    except Exception:
                        pass  # `_prepare` decodes it again and reports it, whatever it raised
            item = await self._prepare(record)
            if item is not None:
                add(item)
                add_id(entry_id)
        return batch, ids, nbytes

    def _drop_filtered(self, records: Sequence[Record], accepts: TopicFilter) -> list[Record]:
        """The records whose topic the filter accepts. The others are never handed out (nor
        decoded, nor dead-lettered, whatever their delivery count); in a group they are
        acknowledged with the application's next acks (the acker sends them, in the same round
        trips), so that they do not stay pending for ever as pulse leaves them."""
        kept: list[Record] = []
        dropped: list[str] = []
        for record in records:
            if accepts(record.topic):
                kept.append(record)
            else:
                dropped.append(record.entry_id)
        if dropped:
            self._counters.filtered += len(dropped)
            if self._settings.group is not None:
                self._acker.done.extend(dropped)
        return kept

    async def _prepare(self, record: Record) -> Any:
        """What the application gets for ``record``, or None when the entry is dead-lettered
        instead: delivered too often, or (in auto mode) undecodable."""
        counters = self._counters
        settings = self._settings
        grouped = settings.group is not None
        if record.delivery_count > 1:
            counters.redelivered += 1
            max_deliveries = settings.max_deliveries
            if grouped and max_deliveries and record.delivery_count > max_deliveries:
                attempts = record.delivery_count - 1
                await self.dead_letter(
                    record,
                    f"not acknowledged after {attempts} deliveries "
                    f"(max_deliveries={max_deliveries})",
                    attempts=attempts,
                )
                return None
        # Decoded here rather than in a helper: in manual mode every entry comes this way.
        event: Any = None
        error: DecodeError | None = None
        payload = record.payload
        if payload is None:
            error = DecodeError(f"entry {record.entry_id} has no payload field")
        else:
            try:
                if settings.fast_decode:
                    event = decode_entry(payload, record.entry_id, settings.stream_id)
                    if record.topic is not None:
                        set_event_topic(event, record.topic)
                else:
                    event = settings.decoder(payload)
                    if settings.letters:
                        event = attrs.evolve(event, letter_id=record.entry_id)
            except DecodeError as exc:
                error = exc
            except Exception as exc:
                error = DecodeError(f"decoder failed: {exc!r}")
                error.__cause__ = exc
        if error is not None:
            counters.decode_errors += 1
            # The report, and a manual delivery's decode_error, carry the entry.
            error.stream_id, error.entry_id, error.payload = (
                settings.stream_id,
                record.entry_id,
                payload,
            )
            if not settings.manual:
                report = DecodeError(
                    f"undecodable entry {settings.stream_id}/{record.entry_id}: {error}",
                    stream_id=settings.stream_id,
                    entry_id=record.entry_id,
                    payload=payload,
                )
                report.__cause__ = error
                self._report(report)
                if grouped:
                    await self.dead_letter(record, f"undecodable: {error}")
                return None
        if settings.manual:
            return self._settler.delivery(record, event, error)
        return (record.entry_id, event)

    async def dead_letter(
        self, record: Record, reason: str, *, attempts: int | None = None
    ) -> bool:
        """Write ``record``'s dead letter, then acknowledge it (group mode). Returns False when
        the dead letter could not be written (the backend refused it or is unreachable): then
        nothing is acknowledged, the entry stays pending and the group delivers it again after
        the grace period, when writing it is tried again.

        A dead letter is never itself dead-lettered (consuming a ``:dlq`` stream must not grow
        ``:dlq:dlq``): such an entry is only reported and acknowledged.

        :raises SubscriptionError: the ack failed past ``reconnect_timeout``.
        :raises ClosedError: the backend was closed.
        :raises StreamDestroyedError: the dead-letter stream was destroyed.
        """
        settings = self._settings
        stream_id = settings.stream_id
        target = settings.dead_letter_stream
        if record.name == DEAD_LETTER_EVENT:
            target = None
            reason += "; it is itself a dead letter, so it is not dead-lettered again"
        letter = DeadLetter(
            origin_stream=stream_id,
            entry_id=record.entry_id,
            group=settings.group,
            consumer=settings.consumer_name if settings.group else None,
            attempts=record.delivery_count if attempts is None else attempts,
            reason=reason,
            event_name=record.name,
            payload=record.payload,
        )
        if target is not None:
            entry = Entry(target, DEAD_LETTER_EVENT, encode_dead_letter(letter))
            try:
                await self._backend.append([entry])
            except (ClosedError, StreamDestroyedError):
                raise
            except StreamsinkError as exc:
                self._counters.dead_letter_failures += 1
                failed = DeadLetterFailedError(
                    f"could not dead-letter {stream_id}/{record.entry_id} to {target} "
                    f"({reason}): {exc}; the entry stays pending and is tried again when "
                    "it is redelivered",
                    letter=letter,
                    target=target,
                )
                failed.__cause__ = exc
                self._report(failed)
                return False
        if settings.group is not None:
            await self._acker.submit([record.entry_id])
        self._counters.dead_lettered += 1
        where = target or "nowhere (dropped)"
        self._report(
            DeadLetteredError(
                f"entry {stream_id}/{record.entry_id} dead-lettered to {where}: {reason}",
                letter=letter,
                target=target,
            )
        )
        return True
