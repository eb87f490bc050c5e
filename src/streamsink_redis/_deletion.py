"""Noticing that a consumer was deleted from its group while it was open, and saying so once.

``XGROUP DELCONSUMER`` (an operator, or a pulse sink's stale-consumer sweep) drops the consumer's
pending entries: they are never redelivered, and its later acks find nothing to acknowledge.
Redis does not tell the consumer, and its next ``XREADGROUP`` silently creates it again, so the
consumer looks for the traces a deletion leaves before anything re-creates it:

- ``XINFO CONSUMERS`` no longer lists it, checked in the same write as every blocking read and
  before every claim (both re-create a deleted consumer), so a deletion while the consumer
  waits is always seen; one between a read that returns entries and the next call is not;
- acks that found nothing pending while the group does not list the consumer;
- with pulse's keep-alive (:mod:`._keepalive`), its keep-alive entry gone, which pulse deletes
  together with a consumer it took for stale.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, final

from streamsink import ConsumerDeletedError

from . import _wire as wire

__all__ = ["DeletionWatch", "lists_consumer"]


@final
class DeletionWatch:
    """Turns the traces of a deletion into one :class:`~streamsink.ConsumerDeletedError` per deletion: once
    one is reported, others are not until the consumer was seen intact again."""

    def __init__(self, stream_id: str, group: str, consumer: str) -> None:
        self._stream_id = stream_id
        self._group = group
        self._consumer = consumer
        self._intact = True
        self._expected = False  # whether the consumer should be in its group by now
        self._pending: ConsumerDeletedError | None = None

    def created(self) -> None:
        """The consumer was created in its group (``XGROUP CREATECONSUMER``, a read): from now on
        its absence is a deletion."""
        self._expected = True

    @property
    def expected(self) -> bool:
        """Whether the consumer should be in its group by now (see :meth:`created`)."""
        return self._expected

    def regrouped(self) -> None:
        """The group was (or may have been) created afresh: the consumer is not in it until it
        reads, and what a lost group took is reported as a lost group, not as a deletion."""
        self._expected = False

    def noticed(self, how: str) -> None:
        """A trace of a deletion was found (``how`` says which); the error waits in :meth:`take`
        unless this deletion was already reported, or the consumer is not expected in its group
        (see :meth:`regrouped`)."""
        if not (self._intact and self._expected):
            return
        self._intact = False
        self._pending = ConsumerDeletedError(
            f"redis consumer {self._consumer!r} of group {self._group!r} on stream "
            f"{self._stream_id!r} was deleted from its group while open ({how}): the entries it "
            "held pending were dropped by Redis and will not be redelivered, and acks of them "
            "acknowledged nothing. It is re-created by its next read. In a group shared with Go "
            "pulse sinks, keep pulse_keepalive on and every ack_grace_period equal to theirs",
            stream_id=self._stream_id,
            group=self._group,
            consumer=self._consumer,
        )

    def seen_intact(self) -> None:
        """The consumer was found in its group with its bookkeeping in place: a later deletion
        is a new one."""
        self._intact = True

    def take(self) -> ConsumerDeletedError | None:
        """The error to raise now, if one waits (then cleared)."""
        error, self._pending = self._pending, None
        return error


def lists_consumer(reply: Any, consumer: str) -> bool:
    """Whether an ``XINFO CONSUMERS`` reply (RESP2 lists or RESP3 maps) names ``consumer``."""
    for info in reply or ():
        if isinstance(info, Mapping):
            pairs = list(info.items())
        else:
            flat = list(info)
            pairs = list(zip(flat[0::2], flat[1::2], strict=False))
        for key, value in pairs:
            if wire.text(key) == "name" and wire.text(value) == consumer:
                return True
    return False
