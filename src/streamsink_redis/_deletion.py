"""Noticing that a consumer was deleted from its group while it was open, and saying so once.

``XGROUP DELCONSUMER`` (an operator, or a pulse sink's stale-consumer sweep) drops the consumer's
pending entries: they are never redelivered, and its later acks find nothing to acknowledge.
Redis does not tell the consumer, and its next ``XREADGROUP`` silently creates it again, so the
consumer looks for the traces a deletion leaves before anything re-creates it:

- ``XINFO CONSUMERS`` no longer lists it, checked before every claim (a claim re-creates a
  deleted consumer), and in the same write as every blocking read while the consumer may hold
  pending entries (a read that returns entries re-creates it too), those reads then blocking
  at most ``claim_interval_ms``. A deletion drops only what the consumer holds: one of a
  consumer that holds nothing loses nothing, so an idle consumer's reads go without the listing
  (it cost as much as the read itself) and block as long as the core asks. A deletion while a
  consumer holding entries waits is always seen, within a claim interval; one between a read
  that returns entries and the next call is not;
- acks that found nothing pending while the group does not list the consumer;
- with pulse's keep-alive (:mod:`._keepalive`), its keep-alive entry gone, which pulse deletes
  together with a consumer it took for stale.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, final

from streamsink import ConsumerDeletedError

from . import _wire as wire

__all__ = ["DeletionWatch", "listed_pending"]


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

    def listing(self, reply: Any, how: str, *, keepalive: bool) -> int | None:
        """Act on an ``XINFO CONSUMERS`` reply: a deletion noticed (``how`` says so) when it does
        not list the consumer; else seen intact, unless a keep-alive (``keepalive``) is the one
        to say so. Returns how many entries the reply says the consumer holds pending (None: not
        told). An error reply (no such key: the stream is gone) says nothing of the consumer:
        what follows it (the read, the claim) reports a lost group."""
        if isinstance(reply, Exception):
            return None
        pending = listed_pending(reply, self._consumer)
        if pending is None:
            self.noticed(how)
        elif not keepalive:
            self.seen_intact()
        return pending if pending is not None and pending >= 0 else None

    def seen_intact(self) -> None:
        """The consumer was found in its group with its bookkeeping in place: a later deletion
        is a new one."""
        self._intact = True

    def take(self) -> ConsumerDeletedError | None:
        """The error to raise now, if one waits (then cleared)."""
        error, self._pending = self._pending, None
        return error


def listed_pending(reply: Any, consumer: str) -> int | None:
    """How many entries an ``XINFO CONSUMERS`` reply (RESP2 lists or RESP3 maps) says
    ``consumer`` holds pending; None when it does not list it (-1 when it lists it without a
    count)."""
    for info in reply or ():
        if isinstance(info, Mapping):
            fields = {wire.text(key): value for key, value in info.items()}
        else:
            flat = list(info)
            fields = {
                wire.text(key): value for key, value in zip(flat[0::2], flat[1::2], strict=False)
            }
        name = fields.get("name")
        if name is not None and wire.text(name) == consumer:
            try:
                return int(fields.get("pending"))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return -1
    return None
