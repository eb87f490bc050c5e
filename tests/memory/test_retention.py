"""Retention beyond ``maxlen``: ``max_age`` trims old entries on append, ``idle_ttl`` expires
streams that long after their last append (both on the broker's fake clocks here)."""

from __future__ import annotations

import anyio
import pytest

from streamsink import ConfigurationError, open_backend
from streamsink.backend import GroupLostError, RecordBatch, StartPosition
from streamsink_memory import MemoryBackend, MemoryBroker, MemoryOptions

from .helpers import FakeClock, entries, ids, payloads, wait_blocked

pytestmark = pytest.mark.anyio

OLDEST = StartPosition.oldest()


def _backend(broker: MemoryBroker, **options: float) -> MemoryBackend:
    return MemoryBackend(broker, options=MemoryOptions(maxlen=0, **options))  # type: ignore[arg-type]


async def test_an_append_trims_the_entries_older_than_max_age(
    broker: MemoryBroker, wall_clock: FakeClock
) -> None:
    """Entries whose id time is more than ``max_age`` before the append are gone, exactly;
    younger ones stay."""
    backend = _backend(broker, max_age=0.2)
    first = await backend.append(entries("s", 2))
    wall_clock.advance(0.15)
    second = await backend.append(entries("s", 1, start=2))
    assert broker.entry_ids("s") == first + second
    wall_clock.advance(0.1)  # the first two are now 0.25 s old, the third 0.1 s
    third = await backend.append(entries("s", 1, start=3))
    assert broker.entry_ids("s") == second + third


async def test_max_age_keeps_the_maxlen_bound(broker: MemoryBroker) -> None:
    """``maxlen`` still trims when entries are young."""
    backend = MemoryBackend(broker, options=MemoryOptions(maxlen=3, max_age=60))
    appended = await backend.append(entries("s", 5))
    assert broker.entry_ids("s") == appended[2:]


async def test_entries_trimmed_by_age_before_a_group_read_them_are_a_gap(
    broker: MemoryBroker, wall_clock: FakeClock
) -> None:
    """A group and a fan-out reader that lag behind age trimming get a RecordBatch whose gap
    counts the entries they lost, as for maxlen trims."""
    backend = _backend(broker, max_age=1)
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    reader = await backend.open_reader("s", OLDEST)
    old = await backend.append(entries("s", 3))
    assert ids(await consumer.read_new(1, 0)) == old[:1]
    assert ids(await reader.read(1, 0)) == old[:1]
    wall_clock.advance(2)
    new = await backend.append(entries("s", 2, start=3))
    for records in (await consumer.read_new(10, 0), await reader.read(10, 0)):
        assert ids(records) == new
        assert type(records) is RecordBatch
        assert records.gap is not None
        assert (records.gap.after, records.gap.before, records.gap.count) == (old[0], new[0], 2)


async def test_a_stream_expires_idle_ttl_after_its_last_append(
    broker: MemoryBroker, clock: FakeClock
) -> None:
    """Every append refreshes the TTL; once it passes, the stream and its groups are gone."""
    backend = _backend(broker, idle_ttl=1)
    await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append(entries("s", 1))
    clock.advance(0.9)
    await backend.append(entries("s", 1, start=1))
    clock.advance(0.9)  # 1.8 s after the first append, 0.9 s after the last
    assert broker.stream_ids() == ["s"]
    assert broker.consumers("s", "g") == ["c"]
    clock.advance(0.2)
    assert broker.stream_ids() == []
    assert broker.statistics().groups == 0


async def test_an_expired_group_is_lost_and_heals_like_after_a_flush(
    broker: MemoryBroker, clock: FakeClock
) -> None:
    """A group consumer on an expired stream gets GroupLostError until ensure_group re-creates
    the group (as after Redis deleted the key); it then reads what is appended next."""
    backend = _backend(broker, idle_ttl=1)
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append(entries("s", 2))
    clock.advance(1)
    with pytest.raises(GroupLostError):
        await consumer.read_new(10, 0)
    await consumer.ensure_group(OLDEST)
    assert broker.stream_ids() == ["s"]  # re-created by the group, with no TTL until an append
    clock.advance(5)
    assert broker.stream_ids() == ["s"]
    new = await backend.append(entries("s", 1, start=2))
    assert ids(await consumer.read_new(10, 0)) == new


async def test_a_blocked_group_read_wakes_when_its_stream_expires(
    broker: MemoryBroker, clock: FakeClock
) -> None:
    """A read blocked on a stream that expires ends with GroupLostError: at once when a fake
    clock is moved and expire_idle() is called, and by itself on the real clock."""
    backend = _backend(broker, idle_ttl=1)
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append(entries("s", 1))
    await consumer.read_new(10, 0)
    errors: list[BaseException] = []

    async def read() -> None:
        try:
            await consumer.read_new(10, 30)
        except GroupLostError as exc:
            errors.append(exc)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await wait_blocked(broker)
            clock.advance(1)
            assert broker.expire_idle() == ["s"]
    assert len(errors) == 1


async def test_a_blocked_read_notices_expiry_on_the_real_clock() -> None:
    """With the broker's own clock, a blocked read wakes when the TTL runs out."""
    broker = MemoryBroker()
    backend = _backend(broker, idle_ttl=0.1)
    consumer = await backend.open_group_consumer("s", "g", "c", OLDEST)
    await backend.append(entries("s", 1))
    await consumer.read_new(10, 0)
    with anyio.fail_after(2), pytest.raises(GroupLostError):
        await consumer.read_new(10, 30)


async def test_a_fan_out_reader_reads_the_stream_appended_after_expiry(
    broker: MemoryBroker, clock: FakeClock, wall_clock: FakeClock
) -> None:
    """A reader keeps its cursor across expiry and reads the new stream's entries, no gap (their
    ids start over from the clock, as a re-created Redis key's do)."""
    backend = _backend(broker, idle_ttl=1)
    reader = await backend.open_reader("s", OLDEST)
    await backend.append(entries("s", 2))
    assert payloads(await reader.read(10, 0)) == [b"0", b"1"]
    clock.advance(1)
    wall_clock.advance(1)
    new = await backend.append(entries("s", 1, start=2))
    records = await reader.read(10, 0)
    assert ids(records) == new
    assert getattr(records, "gap", None) is None


async def test_destroy_takes_the_ttl_with_the_stream(
    broker: MemoryBroker, clock: FakeClock
) -> None:
    """A stream re-created after a destroy does not inherit the old one's expiry."""
    backend = _backend(broker, idle_ttl=1)
    await backend.append(entries("s", 1))
    await backend.destroy("s")
    await _backend(broker).append(entries("s", 1))
    clock.advance(2)
    assert broker.stream_ids() == ["s"]


async def test_an_append_without_idle_ttl_keeps_the_streams_ttl(
    broker: MemoryBroker, clock: FakeClock
) -> None:
    """As XADD leaves a key's TTL alone, a backend with idle_ttl off neither refreshes nor
    clears it; appending after it expired starts a new stream."""
    await _backend(broker, idle_ttl=1).append(entries("s", 1))
    plain = _backend(broker)
    clock.advance(0.5)
    await plain.append(entries("s", 1, start=1))
    clock.advance(0.5)
    appended = await plain.append(entries("s", 1, start=2))
    assert broker.entry_ids("s") == appended


async def test_retention_options_come_from_the_url() -> None:
    """``max_age`` and ``idle_ttl`` are seconds (0 = off, the default); bad values are named."""
    backend = await open_backend("memory://retention-url?max_age=0.5&idle_ttl=30")
    assert isinstance(backend, MemoryBackend)
    assert (backend.options.max_age, backend.options.idle_ttl) == (0.5, 30)
    assert (MemoryOptions().max_age, MemoryOptions().idle_ttl) == (0, 0)
    await backend.aclose()
    for query, shown in (("max_age=soon", "'soon'"), ("idle_ttl=-1", "-1.0")):
        with pytest.raises(ConfigurationError) as caught:
            await open_backend(f"memory://retention-url?{query}")
        option = query.split("=")[0]
        assert str(caught.value) == (
            f"MemoryOptions.{option}={shown} is invalid: expected a number of seconds >= 0.001, "
            "or 0 for off"
        )
