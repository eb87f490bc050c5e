"""Streams are bounded: appends trim the oldest entries beyond ``maxlen`` (0 = unbounded)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streamsink.backend import Gap, RecordBatch, StartPosition
from streamsink_memory import MemoryBackend, MemoryBroker, MemoryOptions

from .helpers import entries, payloads


@pytest.mark.anyio
async def test_appends_beyond_maxlen_trim_the_oldest_entries(broker: MemoryBroker) -> None:
    """With ``maxlen=3`` a stream keeps only its three newest entries."""
    backend = MemoryBackend(broker, options=MemoryOptions(maxlen=3))
    ids = await backend.append(entries("s", 5))
    assert broker.entry_ids("s") == ids[2:]
    assert broker.statistics().entries == 3
    assert broker.last_id("s") == ids[-1]


@pytest.mark.anyio
async def test_maxlen_zero_keeps_everything(backend: MemoryBackend) -> None:
    """``maxlen=0`` means unbounded."""
    await backend.append(entries("s", 2500))
    assert backend.broker.statistics().entries == 2500


@pytest.mark.anyio
async def test_the_default_maxlen_is_pulses_thousand(broker: MemoryBroker) -> None:
    """A backend without options keeps 1000 entries per stream, like pulse."""
    backend = MemoryBackend(broker)
    await backend.append(entries("s", 1200))
    assert broker.statistics().entries == 1000


@pytest.mark.anyio
async def test_long_trimmed_streams_still_read_correctly(broker: MemoryBroker) -> None:
    """After many trims (and internal compactions) readers still see exactly the kept tail."""
    backend = MemoryBackend(broker, options=MemoryOptions(maxlen=10))
    for start in range(0, 5000, 100):
        await backend.append(entries("s", 100, start=start))
    reader = await backend.open_reader("s", StartPosition.oldest())
    records = await reader.read(100, 0)
    assert payloads(records) == [str(i).encode() for i in range(4990, 5000)]


@pytest.mark.anyio
async def test_trimming_lets_a_lagging_reader_resume_at_the_oldest_kept(
    broker: MemoryBroker,
) -> None:
    """A reader whose cursor was trimmed away continues with the oldest entry still kept."""
    backend = MemoryBackend(broker, options=MemoryOptions(maxlen=2))
    await backend.append(entries("s", 1))
    reader = await backend.open_reader("s", StartPosition.oldest())
    assert payloads(await reader.read(1, 0)) == [b"0"]
    await backend.append(entries("s", 4, start=1))
    assert payloads(await reader.read(10, 0)) == [b"3", b"4"]


# -- gaps: what trimming took before a group or reader got to it ---------------------------------


@pytest.mark.anyio
async def test_a_group_behind_trimming_gets_the_gap_once(broker: MemoryBroker) -> None:
    """The read that crosses trimmed entries returns them as its batch's gap (exact count, the
    group's last id and the first id after); the next read reports nothing more."""
    backend = MemoryBackend(broker, options=MemoryOptions(maxlen=3))
    ids = await backend.append(entries("s", 2))
    consumer = await backend.open_group_consumer("s", "g", "c", StartPosition.oldest())
    assert ids == [r.entry_id for r in await consumer.read_new(1, 0)] + ids[1:]
    ids += await backend.append(entries("s", 10, start=2))  # ids[1:9] are trimmed unread
    batch = await consumer.read_new(10, 0)
    assert isinstance(batch, RecordBatch)
    assert batch.gap == Gap(stream_id="s", after=ids[0], before=ids[9], count=8)
    assert [r.entry_id for r in batch] == ids[9:]
    await backend.append(entries("s", 1))
    assert not isinstance(await consumer.read_new(10, 0), RecordBatch)


@pytest.mark.anyio
async def test_compaction_keeps_positions_right(broker: MemoryBroker) -> None:
    """Long runs of trimming (the stored lists are cut now and then) count gaps exactly."""
    backend = MemoryBackend(broker, options=MemoryOptions(maxlen=10))
    reader = await backend.open_reader("s", StartPosition.newest())
    total = 0
    for start in range(0, 5000, 100):
        await backend.append(entries("s", 100, start=start))
        batch = await reader.read(5, 0)
        total += len(batch) + (batch.gap.count or 0 if isinstance(batch, RecordBatch) else 0)
    rest = await reader.read(100, 0)
    assert total + len(rest) == 5000


@pytest.mark.anyio
async def test_starts_before_trimming_report_nothing(broker: MemoryBroker) -> None:
    """Entries trimmed before a group or reader started are not its loss: oldest, at(time)
    before the first kept entry, and after(id) of the newest trimmed id. after(id) of an older
    id is a loss of unknown size."""
    backend = MemoryBackend(broker, options=MemoryOptions(maxlen=3))
    ids = await backend.append(entries("s", 10))
    for start in (StartPosition.oldest(), StartPosition.at(datetime(2000, 1, 1, tzinfo=UTC))):
        reader = await backend.open_reader("s", start)
        assert not isinstance(await reader.read(10, 0), RecordBatch)
        consumer = await backend.open_group_consumer("s", f"g-{start.kind}", "c", start)
        assert not isinstance(await consumer.read_new(10, 0), RecordBatch)
    reader = await backend.open_reader("s", StartPosition.after(ids[6]))
    assert not isinstance(await reader.read(10, 0), RecordBatch)
    reader = await backend.open_reader("s", StartPosition.after(ids[5]))
    batch = await reader.read(10, 0)
    assert isinstance(batch, RecordBatch)
    assert batch.gap == Gap(stream_id="s", after=ids[5], before=ids[7], count=None)


@pytest.mark.anyio
async def test_an_emptied_stream_still_reports_the_gap(broker: MemoryBroker) -> None:
    """When trimming took everything after a reader's cursor, the gap comes with no record."""
    backend = MemoryBackend(broker, options=MemoryOptions(maxlen=5))
    reader = await backend.open_reader("s", StartPosition.newest())
    await backend.append(entries("s", 8))
    broker._streams["s"].trim(0)  # what a time-based retention may do
    batch = await reader.read(10, 0)
    assert isinstance(batch, RecordBatch)
    assert list(batch) == []
    assert (batch.gap.before, batch.gap.count) == (None, 8)
    assert await reader.read(10, 0) == []
