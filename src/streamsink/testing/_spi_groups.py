"""SPI checks of consumer groups: splitting, pending entries, delivery counts, claims, nack,
touch, ack, start positions, restarts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anyio

from .._exceptions import ConfigurationError, StreamsinkError
from ..backend import Entry, StartPosition
from ._spi import NEWEST, OLDEST, SpiHarness, counts, ids, raises, spi_check
from ._spi import call as _call

__all__: list[str] = []

GROUPS = ("consumer_groups",)
OWN = ("consumer_groups", "own_pending")
CLAIMS = ("consumer_groups", "redelivery", "claims")
CLAIMS_OWN = (*CLAIMS, "own_pending")


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


@spi_check("ack", "read_own_pending", "claim_idle", requires=CLAIMS_OWN)
async def ack_is_idempotent(h: SpiHarness) -> None:
    """Acked entries leave the pending list; acking again, an id the group never delivered, or
    nothing is no error (and acks nothing else)."""
    backend = await h.backend()
    stream = h.stream()
    (consumer,) = await h.consumers(backend, stream, "c")
    sent = await h.append(backend, stream, 4)
    await consumer.read_new(3, 0)
    undelivered = sent[3]
    await consumer.ack(sent[:2])
    await consumer.ack([*sent[:2], sent[0], undelivered])
    await consumer.ack([])
    assert ids(await consumer.read_own_pending(None, 10)) == sent[2:3]
    assert ids(await consumer.claim_idle(0, 10)) == sent[2:3]
    await consumer.ack(sent[:3])
    assert await consumer.read_own_pending(None, 10) == []
    assert await consumer.claim_idle(0, 10) == []
    assert counts(await consumer.read_new(10, 0)) == [(undelivered, 1)], "ack took an unread entry"


@spi_check("ack", requires=OWN)
async def ack_of_a_malformed_id_acks_nothing(h: SpiHarness) -> None:
    """An ack naming an id that is not an entry id raises a StreamsinkError, and acks none of
    the call's ids."""
    backend = await h.backend()
    stream = h.stream()
    (consumer,) = await h.consumers(backend, stream, "c")
    (sent,) = await h.append(backend, stream, 1)
    await consumer.read_new(1, 0)
    await raises(StreamsinkError, lambda: consumer.ack([sent, "not-an-id"]), "ack(['not-an-id'])")
    assert ids(await consumer.read_own_pending(None, 10)) == [sent], "a failed ack acked entries"


@spi_check("ack", "claim_idle", requires=CLAIMS_OWN)
async def ack_acts_on_the_group(h: SpiHarness) -> None:
    """The consumer that read an entry can ack it after another consumer claimed it."""
    backend = await h.backend()
    stream = h.stream()
    a, b = await h.consumers(backend, stream, "a", "b")
    (sent,) = await h.append(backend, stream, 1)
    await a.read_new(1, 0)
    assert ids(await b.claim_idle(0, 10)) == [sent]
    await a.ack([sent])
    assert await b.read_own_pending(None, 10) == [], "the claimed entry is still pending"


@spi_check("claim_idle", "read_own_pending", requires=CLAIMS_OWN)
async def claim_takes_idle_entries_with_counts(h: SpiHarness) -> None:
    """``claim_idle`` takes only entries idle for ``min_idle``, any consumer's, moves them to the
    claimer and raises their delivery counts."""
    backend = await h.backend()
    stream = h.stream()
    a, b = await h.consumers(backend, stream, "a", "b")
    sent = await h.append(backend, stream, 3)
    await a.read_new(10, 0)
    assert await b.claim_idle(h.timing.long_grace, 10) == [], "claimed entries not idle enough"
    await h.settle_idle()
    claimed = await b.claim_idle(h.timing.grace, 10)
    assert [(r.entry_id, r.delivery_count, r.payload) for r in claimed] == [
        (sent[0], 2, b"0"),
        (sent[1], 2, b"1"),
        (sent[2], 2, b"2"),
    ], claimed
    assert ids(await b.read_own_pending(None, 10)) == sent
    assert await a.read_own_pending(None, 10) == [], "claimed entries are still the reader's"
    assert await a.claim_idle(h.timing.grace, 10) == [], "a claim did not reset the idle time"


@spi_check("claim_idle", requires=CLAIMS)
async def claim_includes_the_claimers_own_entries(h: SpiHarness) -> None:
    """A consumer reclaims its own idle entries, with the delivery count raised."""
    backend = await h.backend()
    stream = h.stream()
    (consumer,) = await h.consumers(backend, stream, "c")
    (sent,) = await h.append(backend, stream, 1)
    await consumer.read_new(1, 0)
    await h.settle_idle()
    assert counts(await consumer.claim_idle(h.timing.grace, 10)) == [(sent, 2)]


@spi_check("claim_idle", requires=CLAIMS)
async def claims_page_through_the_pending_list(h: SpiHarness) -> None:
    """Successive ``claim_idle`` calls return at most ``count`` entries each and, together,
    every claimable entry once before any comes again."""
    backend = await h.backend()
    stream = h.stream()
    a, b = await h.consumers(backend, stream, "a", "b")
    sent = await h.append(backend, stream, 5)
    await a.read_new(10, 0)
    seen: list[str] = []
    for _ in range(20):
        page = await b.claim_idle(0, 2)
        assert len(page) <= 2, f"claim_idle(count=2) returned {len(page)} records"
        assert not set(ids(page)) & set(seen), f"{ids(page)} claimed again before {sent}"
        seen += ids(page)
        if len(seen) == len(sent):
            break
    assert sorted(seen) == sorted(sent), f"claims reached {seen}, not all of {sent}"
    again: list[str] = []
    for _ in range(20):  # the next sweep starts over
        again += ids(await b.claim_idle(0, 10))
        if again:
            break
    assert again, "no claim returned anything after a full sweep"


@spi_check("nack", "claim_idle", requires=CLAIMS)
async def nack_makes_entries_claimable_at_once(h: SpiHarness) -> None:
    """A nacked entry is claimable under any ``min_idle``; others are not; nacking an id the
    group never delivered is no error (and delivers nothing)."""
    backend = await h.backend()
    stream = h.stream()
    a, b = await h.consumers(backend, stream, "a", "b")
    sent = await h.append(backend, stream, 3)
    await a.read_new(2, 0)
    await a.nack([sent[1], sent[2]])  # sent[2] was never delivered
    claimed = await b.claim_idle(h.timing.long_grace, 10)
    assert counts(claimed) == [(sent[1], 2)], counts(claimed)
    assert counts(await b.read_new(10, 0)) == [(sent[2], 1)], "nack delivered an unread entry"


@spi_check("touch", "claim_idle", requires=CLAIMS_OWN)
async def touch_restarts_the_idle_time_of_own_entries(h: SpiHarness) -> None:
    """``touch`` restarts the idle time of this consumer's entries (their count unchanged) and
    leaves other consumers' entries alone."""
    backend = await h.backend()
    stream = h.stream()
    a, b = await h.consumers(backend, stream, "a", "b")
    mine, theirs = await h.append(backend, stream, 2)
    await a.read_new(1, 0)
    await b.read_new(1, 0)
    await h.settle_idle()
    await a.touch([mine, theirs])
    claimed = await a.claim_idle(h.timing.grace, 10)
    assert counts(claimed) == [(theirs, 2)], f"claimed {counts(claimed)} after touch"
    assert counts(await a.read_own_pending(None, 10)) == [(mine, 2), (theirs, 3)]


@spi_check("touch", "claim_idle", requires=CLAIMS_OWN)
async def touch_leaves_entries_another_consumer_claimed(h: SpiHarness) -> None:
    """``touch`` of an entry another consumer claimed meanwhile does not take it back."""
    backend = await h.backend()
    stream = h.stream()
    a, b = await h.consumers(backend, stream, "a", "b")
    sent = await h.append(backend, stream, 2)
    await a.read_new(10, 0)
    await a.nack(sent[:1])
    assert ids(await b.claim_idle(0, 1)) == sent[:1]
    await a.touch(sent)
    assert ids(await b.read_own_pending(None, 10)) == sent[:1], "touch took the entry back"
    assert ids(await a.read_own_pending(None, 10)) == sent[1:]


@spi_check("aclose", "claim_idle", requires=CLAIMS)
async def a_closed_consumers_entries_stay_claimable(h: SpiHarness) -> None:
    """A consumer closed with pending entries leaves them pending for others to claim."""
    backend = await h.backend()
    stream = h.stream()
    a, b = await h.consumers(backend, stream, "a", "b")
    (sent,) = await h.append(backend, stream, 1)
    await a.read_new(1, 0)
    await a.aclose()
    await a.aclose()
    assert counts(await b.claim_idle(0, 10)) == [(sent, 2)]


@spi_check("open_group_consumer", "read_new", requires=GROUPS)
async def group_start_positions(h: SpiHarness) -> None:
    """A new group starts where its start says: ``newest`` after what the stream holds,
    ``oldest`` at its first entry, ``after(id)`` exclusive, ``at(time)`` at entries from then."""
    backend = await h.backend()
    stream = h.stream()
    sent = await h.append(backend, stream, 2)
    await anyio.sleep(0.02)
    middle = datetime.now(UTC)
    await anyio.sleep(0.02)
    sent += await h.append(backend, stream, 2, first=2)
    starts = {
        "oldest": (OLDEST, sent),
        "after": (StartPosition.after(sent[0]), sent[1:]),
        "at-before": (StartPosition.at(datetime(2000, 1, 1, tzinfo=UTC)), sent),
        "at-middle": (StartPosition.at(middle), sent[2:]),
        "newest": (NEWEST, []),
    }
    consumers = {}
    for name, (start, expected) in starts.items():
        (consumers[name],) = await h.consumers(backend, stream, "c", start=start)
        got = ids(await consumers[name].read_new(10, 0))
        assert got == expected, f"group started at {name} read {got}, expected {expected}"
    later = await h.append(backend, stream, 1, first=4)
    for name, consumer in consumers.items():
        got = ids(await consumer.read_new(10, 0))
        assert got == later, f"group started at {name} then read {got}, expected {later}"


@spi_check("open_group_consumer", "ensure_group", "read_new", requires=GROUPS)
async def an_existing_group_keeps_its_position(h: SpiHarness) -> None:
    """Joining or ensuring an existing group with another start does not move it."""
    backend = await h.backend()
    stream = h.stream()
    group = h.name("group")
    first = await backend.open_group_consumer(stream, group, "a", OLDEST)
    await h.append(backend, stream, 3)
    assert len(await first.read_new(10, 0)) == 3
    again = await backend.open_group_consumer(stream, group, "b", OLDEST)
    await again.ensure_group(OLDEST)
    assert await again.read_new(10, 0) == [], "re-joining at oldest replayed the group"
    late = await backend.open_group_consumer(stream, h.name("group"), "c", NEWEST)
    await h.append(backend, stream, 1, first=3)
    await late.ensure_group(OLDEST)
    assert len(await late.read_new(10, 0)) == 1, "ensure_group(oldest) moved a newest group"


@spi_check("read_new", "read_own_pending", "claim_idle", requires=GROUPS)
async def counts_must_be_positive(h: SpiHarness) -> None:
    """Reads and claims refuse a ``count`` below 1 with ConfigurationError (those the backend
    declares: ``read_own_pending`` with ``own_pending``, ``claim_idle`` with ``claims``)."""
    backend = await h.backend()
    stream = h.stream()
    (consumer,) = await h.consumers(backend, stream, "c")
    for count in (0, -1):
        calls = {"read_new": _call(consumer.read_new, count, 0)}
        if h.capabilities.own_pending:
            calls["read_own_pending"] = _call(consumer.read_own_pending, None, count)
        if h.capabilities.redelivery and h.capabilities.claims:
            calls["claim_idle"] = _call(consumer.claim_idle, 0, count)
        for name, call in calls.items():
            await raises(ConfigurationError, call, f"{name}(count={count})")


@spi_check("open_group_consumer", "open_reader", requires=GROUPS)
async def a_malformed_start_id_is_refused(h: SpiHarness) -> None:
    """``after(id)`` with an id that is not an entry id raises ConfigurationError when the group
    consumer or reader is opened."""
    backend = await h.backend()
    stream = h.stream()
    bad = StartPosition.after("not-an-id")
    await raises(
        ConfigurationError,
        lambda: backend.open_group_consumer(stream, h.name("group"), "c", bad),
        "open_group_consumer(after('not-an-id'))",
    )
    if h.capabilities.fan_out:
        await raises(
            ConfigurationError,
            lambda: backend.open_reader(stream, bad),
            "open_reader(after('not-an-id'))",
        )
