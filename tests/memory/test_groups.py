"""Consumer groups with Redis semantics: split delivery, pending lists, redelivery, claims."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from streamsink._exceptions import ConfigurationError
from streamsink.backend import Entry, StartPosition
from streamsink_memory import MemoryBackend, MemoryBroker, MemoryOptions

from .helpers import FakeClock, entries, ids, payloads

OLDEST = StartPosition.oldest()


@pytest.mark.anyio
async def test_consumers_of_one_group_split_the_entries(backend: MemoryBackend) -> None:
    """Two consumers of a group each get different entries, and together all of them."""
    a = await backend.open_group_consumer("s", "g", "a", OLDEST)
    b = await backend.open_group_consumer("s", "g", "b", OLDEST)
    await backend.append(entries("s", 6))
    first = await a.read_new(4, 0)
    second = await b.read_new(4, 0)
    assert payloads(first) == [b"0", b"1", b"2", b"3"]
    assert payloads(second) == [b"4", b"5"]
    assert await a.read_new(4, 0) == []
    owners = {p.entry_id: p.consumer for p in backend.broker.pending("s", "g")}
    assert owners == {**dict.fromkeys(ids(first), "a"), **dict.fromkeys(ids(second), "b")}


@pytest.mark.anyio
async def test_separate_groups_each_see_every_entry(backend: MemoryBackend) -> None:
    """Different groups on a stream do not share entries: each sees all of them."""
    g1 = await backend.open_group_consumer("s", "g1", "c", OLDEST)
    g2 = await backend.open_group_consumer("s", "g2", "c", OLDEST)
    await backend.append(entries("s", 3))
    assert payloads(await g1.read_new(10, 0)) == [b"0", b"1", b"2"]
    assert payloads(await g2.read_new(10, 0)) == [b"0", b"1", b"2"]


@pytest.mark.anyio
async def test_first_deliveries_count_one_and_become_pending(
    backend: MemoryBackend, clock: FakeClock
) -> None:
    """``read_new`` returns delivery count 1 and records the entries as this consumer's."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append(entries("s", 2))
    records = await consumer.read_new(10, 0)
    assert [r.delivery_count for r in records] == [1, 1]
    clock.advance(3)
    pending = backend.broker.pending("s", "g")
    assert [(p.entry_id, p.consumer, p.delivery_count, p.idle) for p in pending] == [
        (records[0].entry_id, "c", 1, 3.0),
        (records[1].entry_id, "c", 1, 3.0),
    ]


@pytest.mark.anyio
async def test_records_carry_name_payload_and_topic(backend: MemoryBackend) -> None:
    """An entry reads back with its event name, payload and topic."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append([Entry("s", "tool_start", b"{}", topic="t1"), Entry("s", "x", b"")])
    first, second = await consumer.read_new(10, 0)
    assert (first.name, first.payload, first.topic) == ("tool_start", b"{}", "t1")
    assert (second.name, second.payload, second.topic) == ("x", b"", None)


@pytest.mark.anyio
async def test_malformed_entries_read_back_with_missing_fields(backend: MemoryBackend) -> None:
    """Entries lacking a name or payload (other producers') read back with None there."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    backend.broker.append("s", None, b"p")
    backend.broker.append("s", "n", None)
    first, second = await consumer.read_new(10, 0)
    assert (first.name, first.payload) == (None, b"p")
    assert (second.name, second.payload) == ("n", None)


@pytest.mark.anyio
async def test_read_own_pending_redelivers_with_growing_counts(
    backend: MemoryBackend, clock: FakeClock
) -> None:
    """Re-reading own pending entries counts as a delivery each time and resets idle time."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append(entries("s", 3))
    first = await consumer.read_new(10, 0)
    clock.advance(10)
    again = await consumer.read_own_pending(None, 10)
    assert ids(again) == ids(first)
    assert [r.delivery_count for r in again] == [2, 2, 2]
    assert [p.idle for p in backend.broker.pending("s", "g")] == [0.0, 0.0, 0.0]
    third = await consumer.read_own_pending(None, 10)
    assert [r.delivery_count for r in third] == [3, 3, 3]
    assert payloads(third) == [b"0", b"1", b"2"]


@pytest.mark.anyio
async def test_read_own_pending_pages_after_an_id(backend: MemoryBackend) -> None:
    """``after`` and ``count`` page through own pending entries in id order."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append(entries("s", 5))
    first = await consumer.read_new(10, 0)
    page1 = await consumer.read_own_pending(None, 2)
    page2 = await consumer.read_own_pending(page1[-1].entry_id, 2)
    page3 = await consumer.read_own_pending(page2[-1].entry_id, 2)
    page4 = await consumer.read_own_pending(page3[-1].entry_id, 2)
    assert ids(page1 + page2 + page3) == ids(first)
    assert page4 == []


@pytest.mark.anyio
async def test_read_own_pending_sees_only_its_own_entries(backend: MemoryBackend) -> None:
    """Another consumer's pending entries are not part of this consumer's history."""
    a = await backend.open_group_consumer("s", "g", "a", OLDEST)
    b = await backend.open_group_consumer("s", "g", "b", OLDEST)
    await backend.append(entries("s", 2))
    await a.read_new(1, 0)
    b_records = await b.read_new(1, 0)
    assert ids(await b.read_own_pending(None, 10)) == ids(b_records)


@pytest.mark.anyio
async def test_restarted_consumer_gets_its_pending_entries_back(backend: MemoryBackend) -> None:
    """A consumer that closed with pending entries finds them again under the same name."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append(entries("s", 2))
    records = await consumer.read_new(10, 0)
    await consumer.aclose()
    again = await backend.open_group_consumer("s", "g", "c", OLDEST)
    assert ids(await again.read_own_pending(None, 10)) == ids(records)
    assert await again.read_new(10, 0) == []


@pytest.mark.anyio
async def test_read_own_pending_drops_trimmed_entries(broker: MemoryBroker) -> None:
    """Own pending entries whose data was trimmed leave the pending list and are not returned."""
    backend = MemoryBackend(broker, options=MemoryOptions(maxlen=3))
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append(entries("s", 3))
    await consumer.read_new(10, 0)
    await backend.append(entries("s", 2, start=3))  # trims entries 0 and 1
    assert payloads(await consumer.read_own_pending(None, 10)) == [b"2"]
    assert broker.statistics().pending == 1


@pytest.mark.anyio
async def test_ack_removes_entries_and_is_idempotent(backend: MemoryBackend) -> None:
    """Acked entries leave the pending list; acking again, or unknown ids, is no error."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append(entries("s", 3))
    records = await consumer.read_new(10, 0)
    await consumer.ack([records[0].entry_id, records[0].entry_id])
    await consumer.ack([records[0].entry_id, "1-1", "99999999999999-0"])
    assert [p.entry_id for p in backend.broker.pending("s", "g")] == ids(records[1:])
    await consumer.ack(ids(records))
    assert backend.broker.statistics().pending == 0
    assert await consumer.read_own_pending(None, 10) == []


@pytest.mark.anyio
async def test_ack_accepts_an_id_without_sequence(backend: MemoryBackend) -> None:
    """``<ms>`` alone names ``<ms>-0``, as in Redis."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append(entries("s", 1))
    (record,) = await consumer.read_new(1, 0)
    await consumer.ack([record.entry_id.removesuffix("-0")])
    assert backend.broker.statistics().pending == 0


@pytest.mark.anyio
async def test_ack_with_a_malformed_id_acks_nothing(backend: MemoryBackend) -> None:
    """A malformed id raises ConfigurationError before any entry of the call is acked."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append(entries("s", 1))
    (record,) = await consumer.read_new(1, 0)
    with pytest.raises(ConfigurationError, match="not-an-id"):
        await consumer.ack([record.entry_id, "not-an-id"])
    assert backend.broker.statistics().pending == 1


@pytest.mark.anyio
async def test_ack_works_after_another_consumer_claimed_the_entry(backend: MemoryBackend) -> None:
    """Acks act on the group: the original reader can ack an entry another consumer claimed."""
    a = await backend.open_group_consumer("s", "g", "a", OLDEST)
    b = await backend.open_group_consumer("s", "g", "b", OLDEST)
    await backend.append(entries("s", 1))
    (record,) = await a.read_new(1, 0)
    assert ids(await b.claim_idle(0, 10)) == [record.entry_id]
    await a.ack([record.entry_id])
    assert backend.broker.statistics().pending == 0


@pytest.mark.anyio
async def test_claim_idle_takes_only_entries_idle_long_enough(
    backend: MemoryBackend, clock: FakeClock
) -> None:
    """Entries are claimable once idle for ``min_idle``; claiming moves them and counts up."""
    a = await backend.open_group_consumer("s", "g", "a", OLDEST)
    b = await backend.open_group_consumer("s", "g", "b", OLDEST)
    await backend.append(entries("s", 2))
    (first,) = await a.read_new(1, 0)
    clock.advance(15)
    (second,) = await a.read_new(1, 0)
    assert await b.claim_idle(20, 10) == []
    clock.advance(5)
    claimed = await b.claim_idle(20, 10)
    assert ids(claimed) == [first.entry_id]
    assert claimed[0].delivery_count == 2
    assert claimed[0].payload == first.payload
    owners = [(p.entry_id, p.consumer, p.delivery_count) for p in backend.broker.pending("s", "g")]
    assert owners == [(first.entry_id, "b", 2), (second.entry_id, "a", 1)]
    assert ids(await b.read_own_pending(None, 10)) == [first.entry_id]
    own = await a.read_own_pending(None, 10)
    assert [(r.entry_id, r.delivery_count) for r in own] == [(second.entry_id, 2)]
    clock.advance(25)
    assert ids(await a.claim_idle(20, 10)) == [first.entry_id, second.entry_id]


@pytest.mark.anyio
async def test_claim_idle_includes_the_claimers_own_entries(
    backend: MemoryBackend, clock: FakeClock
) -> None:
    """A consumer reclaims its own idle entries, with the delivery count incremented."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append(entries("s", 1))
    await consumer.read_new(1, 0)
    clock.advance(30)
    (record,) = await consumer.claim_idle(20, 10)
    assert record.delivery_count == 2
    assert await consumer.claim_idle(20, 10) == []  # its idle time was reset


@pytest.mark.anyio
async def test_claim_cursor_pages_through_the_pending_list_and_wraps(
    backend: MemoryBackend,
) -> None:
    """Successive claims continue where the last one stopped and restart after the end."""
    a = await backend.open_group_consumer("s", "g", "a", OLDEST)
    b = await backend.open_group_consumer("s", "g", "b", OLDEST)
    await backend.append(entries("s", 7))
    records = await a.read_new(10, 0)
    pages = [ids(await b.claim_idle(0, 3)) for _ in range(4)]
    assert pages == [ids(records[0:3]), ids(records[3:6]), ids(records[6:7]), ids(records[0:3])]
    counts = [p.delivery_count for p in backend.broker.pending("s", "g")]
    assert counts == [3, 3, 3, 2, 2, 2, 2]


@pytest.mark.anyio
async def test_claim_scans_a_bounded_window_like_xautoclaim(
    backend: MemoryBackend, clock: FakeClock
) -> None:
    """One claim examines at most ``10 * count`` entries, so an idle entry further on takes
    several calls to reach."""
    a = await backend.open_group_consumer("s", "g", "a", OLDEST)
    b = await backend.open_group_consumer("s", "g", "b", OLDEST)
    await backend.append(entries("s", 25))
    records = await a.read_new(100, 0)
    await a.nack([records[24].entry_id])
    results = [ids(await b.claim_idle(60, 1)) for _ in range(3)]
    assert results == [[], [], [records[24].entry_id]]


@pytest.mark.anyio
async def test_claim_drops_trimmed_pending_entries(broker: MemoryBroker) -> None:
    """Pending entries whose data was trimmed leave the pending list on claim, unreturned."""
    backend = MemoryBackend(broker, options=MemoryOptions(maxlen=3))
    a = await backend.open_group_consumer("s", "g", "a", OLDEST)
    b = await backend.open_group_consumer("s", "g", "b", OLDEST)
    await backend.append(entries("s", 3))
    await a.read_new(10, 0)
    await backend.append(entries("s", 2, start=3))  # trims entries 0 and 1
    claimed = await b.claim_idle(0, 10)
    assert payloads(claimed) == [b"2"]
    assert [p.entry_id for p in broker.pending("s", "g")] == ids(claimed)
    assert await a.read_own_pending(None, 10) == []


@pytest.mark.anyio
async def test_nack_makes_entries_claimable_at_once(backend: MemoryBackend) -> None:
    """A nacked entry is claimable whatever ``min_idle`` is."""
    a = await backend.open_group_consumer("s", "g", "a", OLDEST)
    b = await backend.open_group_consumer("s", "g", "b", OLDEST)
    await backend.append(entries("s", 2))
    _, second = await a.read_new(10, 0)
    await a.nack([second.entry_id, "1-0"])
    assert backend.broker.pending("s", "g")[1].idle == math.inf
    claimed = await b.claim_idle(3600, 10)
    assert ids(claimed) == [second.entry_id]
    assert claimed[0].delivery_count == 2


@pytest.mark.anyio
async def test_touch_resets_idle_time_of_own_entries_only(
    backend: MemoryBackend, clock: FakeClock
) -> None:
    """``touch`` keeps this consumer's entries from being claimed; others' are untouched."""
    a = await backend.open_group_consumer("s", "g", "a", OLDEST)
    b = await backend.open_group_consumer("s", "g", "b", OLDEST)
    await backend.append(entries("s", 2))
    (mine,) = await a.read_new(1, 0)
    (theirs,) = await b.read_new(1, 0)
    clock.advance(30)
    await a.touch([mine.entry_id, theirs.entry_id])
    assert [p.idle for p in backend.broker.pending("s", "g")] == [0.0, 30.0]
    assert ids(await a.claim_idle(20, 10)) == [theirs.entry_id]


@pytest.mark.anyio
async def test_start_newest_delivers_only_later_entries(backend: MemoryBackend) -> None:
    """A group created at ``newest`` skips what the stream already holds."""
    await backend.append(entries("s", 2))
    consumer = await backend.open_group_consumer("s", "g", "c", StartPosition.newest())
    await backend.append(entries("s", 1, start=2))
    assert payloads(await consumer.read_new(10, 0)) == [b"2"]


@pytest.mark.anyio
async def test_start_oldest_delivers_everything_kept(backend: MemoryBackend) -> None:
    """A group created at ``oldest`` starts with the stream's first entry."""
    await backend.append(entries("s", 2))
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    assert payloads(await consumer.read_new(10, 0)) == [b"0", b"1"]


@pytest.mark.anyio
async def test_start_after_is_exclusive(backend: MemoryBackend) -> None:
    """``after(id)`` delivers the entries with greater ids only."""
    ids_ = await backend.append(entries("s", 3))
    consumer = await backend.open_group_consumer("s", "g", "c", StartPosition.after(ids_[0]))
    assert payloads(await consumer.read_new(10, 0)) == [b"1", b"2"]


@pytest.mark.anyio
async def test_start_at_is_inclusive(backend: MemoryBackend, wall_clock: FakeClock) -> None:
    """``at(t)`` delivers the entries stamped exactly at ``t`` and later ones."""
    for second in (1000.0, 2000.0, 2000.0, 3000.0):
        wall_clock.now = second
        await backend.append(entries("s", 1, start=int(second)))
    start = StartPosition.at(datetime.fromtimestamp(2000.0, UTC))
    consumer = await backend.open_group_consumer("s", "g", "c", start)
    assert payloads(await consumer.read_new(10, 0)) == [b"2000", b"2000", b"3000"]


@pytest.mark.anyio
async def test_an_existing_group_keeps_its_position(backend: MemoryBackend) -> None:
    """Joining an existing group with another start changes nothing: its position wins."""
    first = await backend.open_group_consumer("s", "g", "a", StartPosition.newest())
    await backend.append(entries("s", 2))
    second = await backend.open_group_consumer("s", "g", "b", OLDEST)
    await second.ensure_group(OLDEST)
    assert payloads(await second.read_new(1, 0)) == [b"0"]
    assert payloads(await first.read_new(10, 0)) == [b"1"]


@pytest.mark.anyio
async def test_a_bad_start_id_creates_nothing(backend: MemoryBackend) -> None:
    """An unparsable ``after`` id is a ConfigurationError and leaves no stream behind."""
    with pytest.raises(ConfigurationError, match="<ms>-<seq>"):
        await backend.open_group_consumer("s", "g", "c", StartPosition.after("nope"))
    assert backend.broker.statistics().streams == 0


@pytest.mark.anyio
async def test_joining_a_group_creates_stream_group_and_consumer(backend: MemoryBackend) -> None:
    """Opening a group consumer creates the (empty) stream, the group and the consumer."""
    await backend.open_group_consumer("s", "g", "c", StartPosition.newest())
    stats = backend.broker.statistics()
    assert (stats.streams, stats.entries, stats.groups, stats.consumers) == (1, 0, 1, 1)
    assert backend.broker.consumers("s", "g") == ["c"]


@pytest.mark.anyio
async def test_closing_deletes_a_consumer_without_pending_entries(backend: MemoryBackend) -> None:
    """A consumer that owns nothing is deleted from the group when its handle closes."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append(entries("s", 1))
    await consumer.ack(ids(await consumer.read_new(1, 0)))
    await consumer.aclose()
    await consumer.aclose()
    assert backend.broker.consumers("s", "g") == []


@pytest.mark.anyio
async def test_closing_keeps_a_consumer_that_owns_pending_entries(
    backend: MemoryBackend, clock: FakeClock
) -> None:
    """A consumer with pending entries stays in the group so others can claim them."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append(entries("s", 1))
    (record,) = await consumer.read_new(1, 0)
    await consumer.aclose()
    assert backend.broker.consumers("s", "g") == ["c"]
    other = await backend.open_group_consumer("s", "g", "d", OLDEST)
    clock.advance(60)
    assert ids(await other.claim_idle(20, 10)) == [record.entry_id]


@pytest.mark.anyio
@pytest.mark.parametrize("count", [0, -1, 1.5])
async def test_counts_must_be_positive_integers(backend: MemoryBackend, count: float) -> None:
    """Reads and claims refuse a count that is not a positive integer."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    reader = await backend.open_reader("s", OLDEST)
    with pytest.raises(ConfigurationError, match="count"):
        await consumer.read_new(count, 0)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="count"):
        await consumer.read_own_pending(None, count)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="count"):
        await consumer.claim_idle(0, count)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="count"):
        await reader.read(count, 0)  # type: ignore[arg-type]
