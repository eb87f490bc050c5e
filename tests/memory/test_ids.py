"""Entry ids: ``<ms>-<seq>``, strictly increasing per stream, as Redis assigns them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamsink.backend import Entry, StartPosition
from streamsink.backend.redis_ids import parse_entry_id
from streamsink_memory import MemoryBackend, MemoryBroker
from streamsink_memory._stream import Stream

from .helpers import FakeClock


def test_id_is_wall_clock_milliseconds_then_sequence(
    broker: MemoryBroker, wall_clock: FakeClock
) -> None:
    """The first entry of a millisecond gets ``<ms>-0`` and later ones in it ``<ms>-1``, ``-2``."""
    wall_clock.now = 1_700_000_000.5
    assert [broker.append("s", "n", b"p") for _ in range(3)] == [
        "1700000000500-0",
        "1700000000500-1",
        "1700000000500-2",
    ]
    wall_clock.advance(0.001)
    assert broker.append("s", "n", b"p") == "1700000000501-0"


def test_ids_of_many_entries_in_one_millisecond(
    broker: MemoryBroker, wall_clock: FakeClock
) -> None:
    """Thousands of entries in one millisecond number on past the small sequence numbers, and
    the next millisecond starts again at 0."""
    wall_clock.now = 1_700_000_000.25
    ids = [broker.append("s", "n", b"p") for _ in range(3000)]
    assert ids == [f"1700000000250-{seq}" for seq in range(3000)]
    wall_clock.now = 1_700_000_000.251
    assert broker.append("s", "n", b"p") == "1700000000251-0"


def test_id_keeps_last_millisecond_when_wall_clock_goes_backwards(
    broker: MemoryBroker, wall_clock: FakeClock
) -> None:
    """A wall clock that steps back keeps the last id's time and bumps the sequence."""
    wall_clock.now = 2000.0
    first = broker.append("s", "n", b"p")
    wall_clock.now = 1000.0
    second = broker.append("s", "n", b"p")
    third = broker.append("s", "n", b"p")
    assert (first, second, third) == ("2000000-0", "2000000-1", "2000000-2")


def test_id_at_epoch_zero_is_after_zero_zero(broker: MemoryBroker, wall_clock: FakeClock) -> None:
    """An entry stamped at millisecond 0 gets ``0-1``, since ids must exceed ``0-0``."""
    wall_clock.now = 0.0
    assert broker.append("s", "n", b"p") == "0-1"


def test_sequence_overflow_moves_to_next_millisecond() -> None:
    """When the sequence number is exhausted the id moves to the next millisecond, as Redis."""
    stream = Stream("s", 1)
    stream.append("n", b"p", None, 5, 0)
    stream.last_seq = 2**64 - 2
    assert stream.append("n", b"p", None, 5, 0) == f"5-{2**64 - 1}"
    assert stream.append("n", b"p", None, 5, 0) == "6-0"
    assert stream.append("n", b"p", None, 6, 0) == "6-1"


def test_streams_number_their_entries_independently(
    broker: MemoryBroker, wall_clock: FakeClock
) -> None:
    """Each stream has its own sequence, so two streams can hold the same id."""
    assert broker.append("a", "n", b"p") == broker.append("b", "n", b"p")


@pytest.mark.anyio
async def test_append_returns_ids_in_order_across_streams(
    backend: MemoryBackend, wall_clock: FakeClock
) -> None:
    """A batch touching several streams returns one id per entry, in the batch's order."""
    batch = [Entry("a", "n", b"1"), Entry("b", "n", b"2"), Entry("a", "n", b"3")]
    ids = await backend.append(batch)
    ms = int(wall_clock.now * 1000)
    assert ids == [f"{ms}-0", f"{ms}-0", f"{ms}-1"]
    assert backend.broker.entry_ids("a") == [ids[0], ids[2]]
    assert backend.broker.entry_ids("b") == [ids[1]]


@pytest.mark.anyio
async def test_append_copies_mutable_payloads(backend: MemoryBackend) -> None:
    """A payload given as a mutable buffer is stored as a bytes copy."""
    buffer = bytearray(b"abc")
    await backend.append([Entry("s", "n", buffer)])  # type: ignore[arg-type]
    buffer[0] = ord("x")
    reader = await backend.open_reader("s", StartPosition.oldest())
    (record,) = await reader.read(10, 0)
    assert type(record.payload) is bytes
    assert record.payload == b"abc"


@given(st.lists(st.floats(min_value=0, max_value=4e9, allow_nan=False), min_size=1, max_size=60))
def test_ids_strictly_increase_whatever_the_wall_clock_does(times: list[float]) -> None:
    """Whatever sequence of wall-clock readings, the ids of one stream strictly increase."""
    clock = FakeClock(0.0)
    broker = MemoryBroker(wall_clock=clock)
    previous = (-1, -1)
    for now in times:
        clock.now = now
        current = parse_entry_id(broker.append("s", "n", b""))
        assert current > previous
        previous = current
    assert len(broker.entry_ids("s")) == len(times)
