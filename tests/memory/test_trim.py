"""Streams are bounded: appends trim the oldest entries beyond ``maxlen`` (0 = unbounded)."""

from __future__ import annotations

import pytest

from streamsink.backend import StartPosition
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
