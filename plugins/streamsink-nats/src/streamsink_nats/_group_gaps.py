"""Entries trimmed before a group read them, told from JetStream's two sequences per delivery.

Every delivery of a durable consumer has a *consumer* sequence, one more than the delivery
before it to any member of the group (redeliveries included), and the entry's *stream*
sequence; first deliveries come in stream order, and stream sequences have no holes. Between
two first deliveries this consumer got, (d0, s0) and (d, s), the group got ``d - d0 - 1``
deliveries, so at most that many of the ``s - s0 - 1`` entries between were read by anyone:
the other ``(s - s0) - (d - d0)``, when positive, were trimmed unread (plus one for each
redelivery this consumer got in between: those were no first delivery of anyone). That is
never a false report (unless the group was deleted and made again between two reads of this
consumer, which restarts the consumer sequences unseen); it can miss or undercount a loss when
deliveries this consumer did not see (another member's) fall in between, and then the count is
reported as unknown.
"""

from __future__ import annotations

from collections.abc import Sequence

from nats.aio.msg import Msg
from streamsink.backend import Gap

__all__ = ["GroupGaps"]


class GroupGaps:
    """The last first delivery this consumer got (its consumer and stream sequences), and the
    losses found between it and the next."""

    __slots__ = ("_anchor", "_redelivered", "_stream_id")

    def __init__(self, stream_id: str) -> None:
        self._stream_id = stream_id
        self._anchor: tuple[int, int] | None = None
        self._redelivered = 0  # redeliveries this consumer got since the anchor

    def start(self, consumer_seq: int, stream_seq: int) -> None:
        """The group's last delivery when this consumer joined it (0 and the start position
        when it created the group after an id); a first delivery far past it is a loss."""
        self._anchor, self._redelivered = (consumer_seq, stream_seq), 0

    def forget(self) -> None:
        """Nothing to compare the next delivery with (the group is new, or made again: its
        consumer sequences start over)."""
        self._anchor = None

    def split(self, msgs: Sequence[Msg]) -> tuple[Gap | None, int]:
        """The loss before ``msgs[0]`` (or None), and how many of ``msgs`` come before the next
        loss (all of them when there is none). Moves the anchor over the messages counted."""
        gap: Gap | None = None
        for index, msg in enumerate(msgs):
            meta = msg.metadata
            dseq, sseq = meta.sequence.consumer, meta.sequence.stream
            anchor = self._anchor
            if meta.num_delivered != 1:
                if anchor is not None and dseq > anchor[0]:
                    self._redelivered += 1
                continue
            if anchor is not None and dseq > anchor[0] and sseq > anchor[1]:
                between = dseq - anchor[0] - 1  # deliveries to anyone in between
                lost = (sseq - anchor[1] - 1) - (between - self._redelivered)
                if lost > 0:
                    if index:
                        return gap, index  # this one opens the next batch, with its loss
                    gap = Gap(
                        stream_id=self._stream_id,
                        after=str(anchor[1]) if anchor[1] else None,
                        before=str(sseq),
                        count=lost if between == self._redelivered else None,
                    )
            self._anchor, self._redelivered = (dseq, sseq), 0
        return gap, len(msgs)
