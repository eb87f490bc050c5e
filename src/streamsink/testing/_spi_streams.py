"""SPI checks of appends, fan-out readers, and blocking and cancellation of reads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import anyio

from .._exceptions import ConfigurationError
from ..backend import Record, StartPosition
from ._spi import (
    BOTH,
    FAN_OUT,
    GROUPS,
    NEWEST,
    OLDEST,
    PROMPT,
    Elapsed,
    SpiHarness,
    counts,
    ids,
    raises,
    spi_check,
)
from ._spi import call as _call

__all__: list[str] = []


# -- appends --------------------------------------------------------------------------------------


@spi_check("append", "open_reader", requires=FAN_OUT)
async def append_returns_ids_in_entry_order(h: SpiHarness) -> None:
    """``append`` of a batch across streams returns one id per entry in the batch's order; each
    stream reads back in append order; an empty batch returns no id."""
    backend = await h.backend()
    one, two = h.stream(), h.stream()
    batch = h.entries(one, 2) + h.entries(two, 1, first=2) + h.entries(one, 1, first=3)
    sent = await backend.append(batch)
    assert len(sent) == 4, sent
    assert ids(await h.read_all(backend, one)) == [sent[0], sent[1], sent[3]]
    assert ids(await h.read_all(backend, two)) == [sent[2]]
    assert list(await backend.append([])) == []


# -- fan-out readers ------------------------------------------------------------------------------


@spi_check("open_reader", "read", "aclose", requires=FAN_OUT)
async def readers_each_see_every_entry(h: SpiHarness) -> None:
    """Two readers on one stream each read every entry in order, ``count`` at a time, with
    delivery count 1; closing a reader twice is fine."""
    backend = await h.backend()
    stream = h.stream()
    readers = [await backend.open_reader(stream, OLDEST) for _ in range(2)]
    sent = await h.append(backend, stream, 5)
    for reader in readers:
        page = await reader.read(3, 0)
        assert counts(page) == [(i, 1) for i in sent[:3]], counts(page)
        assert ids(await reader.read(10, 0)) == sent[3:]
        assert await reader.read(10, 0) == []
        await reader.aclose()
        await reader.aclose()


@spi_check("open_reader", "read", "read_new", requires=BOTH)
async def readers_and_groups_are_independent(h: SpiHarness) -> None:
    """A reader sees what a group consumed, and reading changes nothing for the group."""
    backend = await h.backend()
    stream = h.stream()
    (consumer,) = await h.consumers(backend, stream, "c")
    reader = await backend.open_reader(stream, OLDEST)
    sent = await h.append(backend, stream, 2)
    assert ids(await reader.read(10, 0)) == sent
    assert ids(await consumer.read_new(10, 0)) == sent
    assert ids(await (await backend.open_reader(stream, OLDEST)).read(10, 0)) == sent


@spi_check("open_reader", "read", requires=FAN_OUT)
async def reader_start_positions(h: SpiHarness) -> None:
    """Readers start as groups do: ``newest`` (resolved when opened), ``oldest``, ``after(id)``
    exclusive, ``at(time)`` at entries from then."""
    backend = await h.backend()
    stream = h.stream()
    sent = await h.append(backend, stream, 2)
    await anyio.sleep(0.02)
    middle = datetime.now(UTC)
    await anyio.sleep(0.02)
    sent += await h.append(backend, stream, 1, first=2)
    readers = {
        "newest": (await backend.open_reader(stream, NEWEST), []),
        "oldest": (await backend.open_reader(stream, OLDEST), sent),
        "after": (await backend.open_reader(stream, StartPosition.after(sent[0])), sent[1:]),
        "at": (await backend.open_reader(stream, StartPosition.at(middle)), sent[2:]),
    }
    later = await h.append(backend, stream, 1, first=3)
    for name, (reader, expected) in readers.items():
        got = ids(await reader.read(10, 0))
        assert got == expected + later, f"reader from {name} read {got}, not {expected + later}"


@spi_check("open_reader", "read", requires=FAN_OUT)
async def a_reader_on_a_missing_stream_sees_its_first_entries(h: SpiHarness) -> None:
    """A reader opened at ``newest`` before its stream exists reads nothing, then everything
    appended later."""
    backend = await h.backend()
    stream = h.stream()
    reader = await backend.open_reader(stream, NEWEST)
    assert await reader.read(10, 0) == []
    sent = await h.append(backend, stream, 2)
    assert ids(await reader.read(10, 0)) == sent


@spi_check("read", requires=FAN_OUT)
async def reader_counts_must_be_positive(h: SpiHarness) -> None:
    """A reader refuses a ``count`` below 1 with ConfigurationError."""
    backend = await h.backend()
    reader = await backend.open_reader(h.stream(), OLDEST)
    for count in (0, -1):
        await raises(ConfigurationError, _call(reader.read, count, 0), f"read(count={count})")


# -- blocking and cancellation --------------------------------------------------------------------


@spi_check("read_new", "read", requires=GROUPS)
async def blocked_reads_wake_on_append(h: SpiHarness) -> None:
    """``read_new`` and ``read`` blocked on an empty stream return as soon as an entry is
    appended, well before ``block`` ends."""
    backend = await h.backend()
    streams = [h.stream(), h.stream()]
    (consumer,) = await h.consumers(backend, streams[0], "c", start=NEWEST)
    reads: list[Callable[[], Awaitable[Any]]] = [_call(consumer.read_new, 10, 3)]
    if h.capabilities.fan_out:
        reads.append(_call((await backend.open_reader(streams[1], NEWEST)).read, 10, 3))
    for stream, read in zip(streams, reads, strict=False):
        got: list[Record] = []

        async def reading(
            read: Callable[[], Awaitable[Any]] = read, got: list[Record] = got
        ) -> None:
            got.extend(await read())

        with Elapsed() as elapsed:
            async with anyio.create_task_group() as tg:
                tg.start_soon(reading)
                await anyio.sleep(0.05)
                sent = await h.append(backend, stream, 1)
        assert ids(got) == sent, f"a blocked read returned {ids(got)}, not {sent}"
        assert elapsed.seconds < 1.5, f"a blocked read took {elapsed.seconds:.2f} s to wake"


@spi_check("read_new", "read", requires=GROUPS)
async def blocked_reads_time_out_empty(h: SpiHarness) -> None:
    """With nothing to read, a read returns ``[]`` after about ``block`` seconds, at once with
    ``block <= 0``."""
    backend = await h.backend()
    stream = h.stream()
    (consumer,) = await h.consumers(backend, stream, "c")
    reads: list[Callable[[float], Awaitable[Any]]] = [lambda b: consumer.read_new(10, b)]
    if h.capabilities.fan_out:
        reader = await backend.open_reader(stream, OLDEST)
        reads.append(lambda b: reader.read(10, b))
    for read in reads:
        with Elapsed() as waited:
            assert list(await read(0.1)) == []
        assert 0.08 <= waited.seconds < 1.0, f"block=0.1 waited {waited.seconds:.2f} s"
        with Elapsed() as waited:
            assert list(await read(0)) == []
            assert list(await read(-1)) == []
        assert waited.seconds < 0.5, f"block<=0 waited {waited.seconds:.2f} s"


@spi_check("read_new", requires=GROUPS)
async def one_of_two_blocked_consumers_gets_an_entry(h: SpiHarness) -> None:
    """Two consumers of a group blocked in ``read_new``: an entry goes to one, the other keeps
    waiting and gets the next."""
    backend = await h.backend()
    stream = h.stream()
    a, b = await h.consumers(backend, stream, "a", "b", start=NEWEST)
    results: list[list[str]] = []

    async def read(consumer: Any) -> None:
        results.append(ids(await consumer.read_new(10, 5)))

    with anyio.fail_after(h.timing.timeout):
        async with anyio.create_task_group() as tg:
            tg.start_soon(read, a)
            tg.start_soon(read, b)
            await anyio.sleep(0.1)
            first = await h.append(backend, stream, 1)
            await anyio.sleep(0.2)
            assert results == [first], f"one append woke reads that returned {results}"
            second = await h.append(backend, stream, 1, first=1)
    assert sorted(results) == sorted([first, second]), results


@spi_check("read_new", "read", requires=GROUPS)
async def cancelling_a_blocked_read_is_prompt(h: SpiHarness) -> None:
    """Cancelling a read blocked for 5 s returns at once and leaves the handle usable."""
    backend = await h.backend()
    stream = h.stream()
    (consumer,) = await h.consumers(backend, stream, "c", start=NEWEST)
    handles: list[tuple[str, Callable[[float], Awaitable[Any]]]] = [
        ("read_new", lambda b: consumer.read_new(10, b))
    ]
    if h.capabilities.fan_out:
        reader = await backend.open_reader(stream, NEWEST)
        handles.append(("read", lambda b: reader.read(10, b)))
    for name, read in handles:
        for _ in range(2):
            with Elapsed() as elapsed, anyio.move_on_after(0.1):
                await read(5)
            assert elapsed.seconds < PROMPT, f"cancelled {name} took {elapsed.seconds:.2f} s"
    sent = await h.append(backend, stream, 1)
    for name, read in handles:
        got = ids(await read(1))
        assert got == sent, f"{name} after a cancelled read returned {got}, not {sent}"


@spi_check("read_new", "read_own_pending", requires=("consumer_groups", "own_pending"))
async def a_read_cancelled_before_it_runs_takes_nothing(h: SpiHarness) -> None:
    """``read_new`` called in an already cancelled scope delivers nothing to the group: the next
    read gets the entry as a first delivery."""
    backend = await h.backend()
    stream = h.stream()
    (consumer,) = await h.consumers(backend, stream, "c")
    sent = await h.append(backend, stream, 1)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await consumer.read_new(10, 0)
    assert await consumer.read_own_pending(None, 10) == [], "a cancelled read took entries"
    assert counts(await consumer.read_new(10, 0)) == [(sent[0], 1)]
