"""SPI checks of ``pending_summary`` (``Capabilities.pending_summary``,
:class:`~streamsink.backend.SummarizingGroupConsumer`): what the core schedules its claims from."""

from __future__ import annotations

from typing import cast

import anyio

from ..backend import GroupConsumer, PendingSummary, SummarizingGroupConsumer
from ._spi import CLAIMS, OLDEST, SpiHarness, counts, ids, keys, spi_check

__all__: list[str] = []

SUMMARY = (*CLAIMS, "pending_summary")


async def _summary(consumer: GroupConsumer) -> PendingSummary:
    summary = await cast(SummarizingGroupConsumer, consumer).pending_summary()
    assert isinstance(summary, PendingSummary), f"pending_summary returned {summary!r}"
    return summary


@spi_check("pending_summary", "read_new", "ack", requires=SUMMARY)
async def pending_summary_counts_the_whole_group(h: SpiHarness) -> None:
    """``pending_summary`` counts the entries every consumer of the group holds pending (0 and
    no idle time when there are none, nor after they are acked), and tells how long the
    longest-idle one has been idle: not before it was read, at least the grace period once it
    was idle that long."""
    backend = await h.backend()
    stream = h.stream()
    a, b = await h.consumers(backend, stream, "a", "b", start=OLDEST)
    assert await _summary(a) == PendingSummary(0, None), "a group without pending entries"
    sent = await h.append(backend, stream, 3)
    assert await _summary(a) == PendingSummary(0, None), "entries appended but never read"
    with anyio.fail_after(h.timing.timeout):
        read_at = anyio.current_time()
        first, second = await a.read_new(2, 0), await b.read_new(10, 0)
    assert ids(first) + ids(second) == sent
    summary = await _summary(b)  # b's view covers a's entries too
    assert summary.count == 3, f"{summary}: 3 entries are pending, 2 with a and 1 with b"
    elapsed = anyio.current_time() - read_at
    assert summary.oldest_idle is not None, f"{summary}: 3 pending, their idle time not told"
    assert 0 <= summary.oldest_idle <= elapsed + 1.0, f"{summary}: read {elapsed:.3f} s ago"
    await h.settle_idle()
    idle = await _summary(a)
    assert idle.count == 3
    assert idle.oldest_idle is not None, f"{idle}"
    assert idle.oldest_idle >= h.timing.grace, f"{idle}: idle for over {h.timing.grace} s"
    await a.ack(ids(first))
    await b.ack(ids(second))
    assert await _summary(a) == PendingSummary(0, None), "everything was acked"


@spi_check("pending_summary", "nack", "claim_idle", requires=SUMMARY)
async def pending_summary_changes_nothing_and_sees_nacks(h: SpiHarness) -> None:
    """A nacked entry counts as idle past any grace period (it is claimable at once), and asking
    for a summary changes nothing: no delivery is counted, no idle time restarts."""
    backend = await h.backend()
    stream = h.stream()
    a, b = await h.consumers(backend, stream, "a", "b", start=OLDEST)
    (sent,) = await h.append(backend, stream, 1)
    read = await a.read_new(10, 0)
    assert ids(read) == [sent]
    await a.nack(keys(read))
    nacked = await _summary(b)
    assert nacked.count == 1
    assert nacked.oldest_idle is not None, f"{nacked}"
    assert nacked.oldest_idle >= h.timing.long_grace, f"{nacked}: a nacked entry is idle now"
    for _ in range(3):
        await _summary(b)
    claimed = counts(await b.claim_idle(h.timing.long_grace, 10))
    assert claimed == [(sent, 2)], f"claimed {claimed} after summaries: one delivery more"
    await b.ack([sent])
