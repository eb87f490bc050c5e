"""SPI checks of what a backend declares beyond the basics: the grace period given when a group
consumer is opened, entry times (``TimedBackend.entry_time``) and a native terminate
(``TerminatingGroupConsumer.term``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import anyio

from .._exceptions import ConfigurationError
from ..backend import StartPosition, TerminatingGroupConsumer, TimedBackend
from ._spi import OLDEST, SpiHarness, counts, ids, raises, spi_check

__all__: list[str] = []

#: how far an entry's time may be from the clock of the process that appended it (a broker's
#: clock is its own)
_CLOCK_SKEW = timedelta(seconds=30)


@spi_check("open_group_consumer", "read_new", requires=("consumer_groups", "redelivery"))
async def redelivery_follows_the_grace_period_given_at_open(h: SpiHarness) -> None:
    """An entry read through a consumer opened with ``ack_grace_period`` and not acknowledged is
    not redelivered before that grace period, and is once it passed, with its count raised
    (claimed by the core, or handed out again by ``read_new`` where the backend redelivers by
    itself)."""
    backend = await h.backend()
    stream = h.stream()
    group = h.name("group")
    grace = h.timing.grace
    reader = await backend.open_group_consumer(stream, group, "a", OLDEST, ack_grace_period=grace)
    other = await backend.open_group_consumer(stream, group, "b", OLDEST, ack_grace_period=grace)
    (sent,) = await h.append(backend, stream, 1)
    assert ids(await reader.read_new(10, 0)) == [sent]
    early = await h.redelivered(other)
    assert early == [], f"{ids(early)} redelivered before the grace period given at open"
    got: list[tuple[str, int]] = []
    with anyio.move_on_after(h.timing.timeout):
        await h.settle_idle()
        while not got:
            got = counts(await h.redelivered(other))
            if not got:
                await anyio.sleep(h.timing.claim)
    assert got == [(sent, 2)], (
        f"redelivered {got} within {h.timing.timeout} s of a grace period of {grace} s given "
        "to open_group_consumer"
    )
    await other.ack([sent])


async def _times(backend: TimedBackend, stream: str, entry_ids: list[str]) -> list[datetime]:
    return [await backend.entry_time(stream, entry_id) for entry_id in entry_ids]


@spi_check("append", "entry_time", "open_group_consumer", "read_new", requires=("entry_times",))
async def entry_times_are_where_at_starts(h: SpiHarness) -> None:
    """``entry_time`` gives each entry a timezone-aware time near its append, not decreasing in
    id order, and ``StartPosition.at(entry_time(id))`` starts a group (and a reader) exactly at
    the first entry of that time: inclusive, and nothing earlier. A malformed id raises
    ConfigurationError."""
    backend = cast(TimedBackend, await h.backend())
    stream = h.stream()
    sent: list[str] = []
    before = datetime.now(UTC)
    for i in range(3):
        sent += await h.append(backend, stream, 2, first=2 * i)
        await anyio.sleep(0.02)  # a later time for the next two
    after = datetime.now(UTC)
    times = await _times(backend, stream, sent)
    for entry_id, time in zip(sent, times, strict=True):
        assert isinstance(time, datetime) and time.tzinfo is not None, (entry_id, time)
        assert before - _CLOCK_SKEW <= time <= after + _CLOCK_SKEW, (
            f"entry {entry_id} appended between {before} and {after} has time {time}"
        )
    timeline = list(zip(sent, times, strict=True))
    assert times == sorted(times), f"entry times decrease in id order: {timeline}"
    for entry_id, time in zip(sent, times, strict=True):
        expected = [i for i, t in zip(sent, times, strict=True) if t >= time]
        start = StartPosition.at(time)
        (consumer,) = await h.consumers(backend, stream, "c", start=start)
        got = ids(await consumer.read_new(10, 0))
        assert got == expected, (
            f"a group at({time.isoformat()}), the time of {entry_id}, read {got}, not {expected}"
        )
        if h.capabilities.fan_out:
            reader = await backend.open_reader(stream, start)
            got = ids(await reader.read(10, 0))
            await reader.aclose()
            assert got == expected, f"a reader at the time of {entry_id} read {got}"
    await raises(
        ConfigurationError,
        lambda: backend.entry_time(stream, "not-an-id"),
        "entry_time('not-an-id')",
    )


@spi_check("term", "read_new", requires=("consumer_groups", "term"))
async def term_ends_deliveries_for_good(h: SpiHarness) -> None:
    """``term`` of a delivery ends it as ``ack`` does: its entry is never delivered again (nor
    claimed, nor redelivered after the grace period), others are; terminating it again, or an
    id the consumer does not hold, is no error."""
    backend = await h.backend()
    stream = h.stream()
    group = h.name("group")
    grace = h.timing.grace
    opened = await backend.open_group_consumer(stream, group, "a", OLDEST, ack_grace_period=grace)
    consumer = cast(TerminatingGroupConsumer, opened)
    first, second, unread = await h.append(backend, stream, 3)
    assert ids(await consumer.read_new(2, 0)) == [first, second]
    await consumer.term([first])
    await consumer.term([first, unread])
    await consumer.term([])
    seen: list[tuple[str, int]] = []
    if h.capabilities.redelivery:
        await h.settle_idle()
        with anyio.move_on_after(h.timing.grace * 4):
            while (second, 2) not in seen:
                seen += counts(await h.redelivered(consumer))
                await anyio.sleep(h.timing.claim)
        assert (second, 2) in seen, f"the unsettled {second} was not redelivered: {seen}"
    seen += counts(await consumer.read_new(10, 0))
    assert all(entry != first for entry, _ in seen), f"the terminated {first} came back: {seen}"
    assert [c for c in seen if c[0] == unread] == [(unread, 1)], f"term took {unread}: {seen}"
