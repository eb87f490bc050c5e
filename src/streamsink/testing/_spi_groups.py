"""SPI checks of consumer groups: splitting, records, pending entries and their delivery
counts, restarts, pending entries trimming removed."""

from __future__ import annotations

from typing import Any

from ..backend import Entry
from ._spi import CLAIMS_OWN, GROUPS, OLDEST, OWN, SpiHarness, counts, ids, spi_check

__all__: list[str] = []


@spi_check("open_group_consumer", "read_new", requires=GROUPS)
async def group_consumers_split_entries(h: SpiHarness) -> None:
    """Two consumers of one group each get a disjoint part of the entries, together all of them,
    in id order."""
    backend = await h.backend()
    stream = h.stream()
    a, b = await h.consumers(backend, stream, "a", "b")
    sent = await h.append(backend, stream, 6)
    first = await a.read_new(4, 0)
    second = await b.read_new(10, 0)
    assert ids(first) == sent[:4], f"first consumer read {ids(first)}, expected {sent[:4]}"
    assert ids(second) == sent[4:], f"second consumer read {ids(second)}, expected {sent[4:]}"
    assert await a.read_new(10, 0) == [], "an entry was delivered twice in one group"


@spi_check("open_group_consumer", "read_new", requires=GROUPS)
async def each_group_sees_every_entry(h: SpiHarness) -> None:
    """Different groups on one stream each receive every entry."""
    backend = await h.backend()
    stream = h.stream()
    (g1,) = await h.consumers(backend, stream, "c")
    (g2,) = await h.consumers(backend, stream, "c")
    sent = await h.append(backend, stream, 3)
    assert ids(await g1.read_new(10, 0)) == sent
    assert ids(await g2.read_new(10, 0)) == sent, "a second group missed entries"


@spi_check("append", "read_new", requires=GROUPS)
async def records_carry_name_payload_and_topic(h: SpiHarness) -> None:
    """An entry reads back through a group with its id, name, payload and topic (None when it
    had none)."""
    backend = await h.backend()
    stream = h.stream()
    (consumer,) = await h.consumers(backend, stream, "c")
    sent = await backend.append(
        [Entry(stream, "tool_start", b'{"a":1}', topic="t1"), Entry(stream, "x", b"")]
    )
    first, second = await consumer.read_new(10, 0)
    assert (first.entry_id, first.name, first.payload, first.topic) == (
        sent[0],
        "tool_start",
        b'{"a":1}',
        "t1",
    ), first
    assert (second.entry_id, second.name, second.payload, second.topic) == (
        sent[1],
        "x",
        b"",
        None,
    ), second


@spi_check("read_new", "read_own_pending", requires=OWN)
async def own_pending_reads_count_deliveries(h: SpiHarness) -> None:
    """``read_new`` delivers with count 1; each ``read_own_pending`` of an entry is a new
    delivery (count 2, 3…), in id order, after ``after`` (exclusive), at most ``count``."""
    backend = await h.backend()
    stream = h.stream()
    (consumer,) = await h.consumers(backend, stream, "c")
    sent = await h.append(backend, stream, 3)
    assert counts(await consumer.read_new(10, 0)) == [(i, 1) for i in sent]
    again = await consumer.read_own_pending(None, 10)
    assert counts(again) == [(i, 2) for i in sent], counts(again)
    assert [r.payload for r in again] == [b"0", b"1", b"2"]
    later = await consumer.read_own_pending(sent[0], 1)
    assert counts(later) == [(sent[1], 3)], counts(later)
    assert await consumer.read_own_pending(sent[2], 10) == []
    third = await consumer.read_own_pending(None, 10)
    assert counts(third) == [(sent[0], 3), (sent[1], 4), (sent[2], 3)], counts(third)


@spi_check("read_own_pending", requires=OWN)
async def own_pending_pages_after_an_id(h: SpiHarness) -> None:
    """Paging with ``after`` = the last id of the previous page returns every own pending entry
    once, then nothing."""
    backend = await h.backend()
    stream = h.stream()
    (consumer,) = await h.consumers(backend, stream, "c")
    sent = await h.append(backend, stream, 5)
    await consumer.read_new(10, 0)
    seen: list[str] = []
    after: str | None = None
    for _ in range(5):
        page = await consumer.read_own_pending(after, 2)
        assert len(page) <= 2, f"read_own_pending(count=2) returned {len(page)} records"
        if not page:
            break
        seen += ids(page)
        after = page[-1].entry_id
    assert seen == sent, f"paged through {seen}, expected {sent}"
    assert after is not None and await consumer.read_own_pending(after, 2) == []


@spi_check("read_own_pending", requires=OWN)
async def own_pending_is_only_this_consumers(h: SpiHarness) -> None:
    """Another consumer's pending entries are not part of this consumer's own pending list."""
    backend = await h.backend()
    stream = h.stream()
    a, b = await h.consumers(backend, stream, "a", "b")
    await h.append(backend, stream, 2)
    mine = await a.read_new(1, 0)
    theirs = await b.read_new(1, 0)
    assert ids(await a.read_own_pending(None, 10)) == ids(mine)
    assert ids(await b.read_own_pending(None, 10)) == ids(theirs)


@spi_check("open_group_consumer", "read_own_pending", "aclose", requires=OWN)
async def restarted_consumer_gets_its_pending_back(h: SpiHarness) -> None:
    """A consumer closed with pending entries, opened again under the same name on a new backend
    object, gets them back from ``read_own_pending`` (counted as new deliveries), not from
    ``read_new``."""
    first = await h.backend()
    stream = h.stream()
    group = h.name("group")
    consumer = await first.open_group_consumer(stream, group, "worker-1", OLDEST)
    sent = await h.append(first, stream, 3)
    await consumer.read_new(10, 0)
    await consumer.aclose()
    await first.aclose()
    second = await h.backend()
    restarted = await second.open_group_consumer(stream, group, "worker-1", OLDEST)
    drained = await restarted.read_own_pending(None, 10)
    assert counts(drained) == [(i, 2) for i in sent], counts(drained)
    assert await restarted.read_new(10, 0) == []


async def _pending_then_trimmed(h: SpiHarness) -> tuple[Any, Any, list[str]]:
    """Consumer ``a`` of a group holds 3 entries that trimming then removes (500 appended with
    ``maxlen=10``), and 2 of the newest; returns ``a``, another consumer ``b``, the 2 kept ids."""
    backend = await h.backend(maxlen=10)
    stream = h.stream()
    a, b = await h.consumers(backend, stream, "a", "b")
    await h.append(backend, stream, 3)
    assert len(await a.read_new(3, 0)) == 3
    sent = await h.append(backend, stream, 500, first=3)
    kept = ids(await a.read_new(2, 0))
    assert len(kept) == 2 and set(kept) <= set(sent[-250:]), f"read {kept} behind trimming"
    return a, b, kept


@spi_check("read_own_pending", requires=(*OWN, "trim"))
async def own_pending_drops_trimmed_entries(h: SpiHarness) -> None:
    """Own pending entries whose data was trimmed are not returned, and leave the pending list;
    the others are returned."""
    a, _, kept = await _pending_then_trimmed(h)
    assert ids(await a.read_own_pending(None, 10)) == kept
    assert ids(await a.read_own_pending(None, 10)) == kept, "trimmed entries came back"


@spi_check("claim_idle", requires=(*CLAIMS_OWN, "trim"))
async def claims_drop_trimmed_entries(h: SpiHarness) -> None:
    """A claim skips pending entries whose data was trimmed (they leave the pending list) and
    takes the others."""
    a, b, kept = await _pending_then_trimmed(h)
    claimed: list[str] = []
    for _ in range(20):  # a claim may scan part of the pending list only
        claimed += ids(await b.claim_idle(0, 10))
        if len(claimed) >= len(kept):
            break
    assert claimed == kept, f"claimed {claimed}, expected only {kept}"
    assert await a.read_own_pending(None, 10) == [], "trimmed entries are still pending"
