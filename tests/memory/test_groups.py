"""Consumer groups with Redis semantics: split delivery, pending lists, redelivery, claims."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streamsink._exceptions import ConfigurationError
from streamsink.backend import StartPosition
from streamsink_memory import MemoryBackend

from .helpers import FakeClock, entries, ids, payloads

OLDEST = StartPosition.oldest()


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
async def test_malformed_entries_read_back_with_missing_fields(backend: MemoryBackend) -> None:
    """Entries lacking a name or payload (other producers') read back with None there."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    backend.broker.append("s", None, b"p")
    backend.broker.append("s", "n", None)
    first, second = await consumer.read_new(10, 0)
    assert (first.name, first.payload) == (None, b"p")
    assert (second.name, second.payload) == ("n", None)


@pytest.mark.anyio
async def test_ack_accepts_an_id_without_sequence(backend: MemoryBackend) -> None:
    """``<ms>`` alone names ``<ms>-0``, as in Redis."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append(entries("s", 1))
    (record,) = await consumer.read_new(1, 0)
    await consumer.ack([record.entry_id.removesuffix("-0")])
    assert backend.broker.statistics().pending == 0


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
async def test_start_at_is_inclusive(backend: MemoryBackend, wall_clock: FakeClock) -> None:
    """``at(t)`` delivers the entries stamped exactly at ``t`` and later ones."""
    for second in (1000.0, 2000.0, 2000.0, 3000.0):
        wall_clock.now = second
        await backend.append(entries("s", 1, start=int(second)))
    start = StartPosition.at(datetime.fromtimestamp(2000.0, UTC))
    consumer = await backend.open_group_consumer("s", "g", "c", start)
    assert payloads(await consumer.read_new(10, 0)) == [b"2000", b"2000", b"3000"]


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
    """A consumer with pending entries stays in the group (that others can claim them: the SPI
    checks)."""
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append(entries("s", 1))
    await consumer.read_new(1, 0)
    await consumer.aclose()
    assert backend.broker.consumers("s", "g") == ["c"]


@pytest.mark.anyio
@pytest.mark.parametrize("count", [1.5, True])
async def test_counts_must_be_integers(backend: MemoryBackend, count: float) -> None:
    """Reads and claims refuse a count that is not an integer (counts below 1: the SPI checks)."""
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
