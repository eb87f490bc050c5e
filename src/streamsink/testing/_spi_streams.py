"""SPI checks of appends, fan-out readers, blocking and cancellation, closing, destroying and
lost groups."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import anyio

from .._exceptions import ClosedError, ConfigurationError
from ..backend import GroupLostError, Record, StartPosition, StreamDestroyedError
from ._spi import NEWEST, OLDEST, Elapsed, SpiHarness, counts, ids, raises, spi_check
from ._spi import call as _call

__all__: list[str] = []

GROUPS = ("consumer_groups",)
FAN_OUT = ("fan_out",)
BOTH = ("consumer_groups", "fan_out")
PROMPT = 0.5  # seconds within which a woken or cancelled read must return


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


# -- closing ---------------------------------------------------------------------------------------


@spi_check("aclose", "read_new", "ack", "ensure_group", "read", requires=GROUPS)
async def closed_handles_refuse_calls(h: SpiHarness) -> None:
    """After ``aclose`` (idempotent) a group consumer's and a reader's calls raise
    ClosedError."""
    backend = await h.backend()
    stream = h.stream()
    (consumer,) = await h.consumers(backend, stream, "c")
    (sent,) = await h.append(backend, stream, 1)
    await consumer.aclose()
    await consumer.aclose()
    await raises(ClosedError, _call(consumer.read_new, 1, 0), "read_new after aclose")
    await raises(ClosedError, _call(consumer.ack, [sent]), "ack after aclose")
    await raises(ClosedError, _call(consumer.ensure_group, OLDEST), "ensure_group after aclose")
    if h.capabilities.fan_out:
        reader = await backend.open_reader(stream, OLDEST)
        await reader.aclose()
        await raises(ClosedError, _call(reader.read, 1, 0), "read after aclose")


@spi_check("aclose", "read_new", requires=GROUPS)
async def closing_a_consumer_ends_its_blocked_read(h: SpiHarness) -> None:
    """``aclose`` of a consumer blocked in ``read_new`` in another task ends that read at once
    (with ClosedError, or an empty result)."""
    backend = await h.backend()
    (consumer,) = await h.consumers(backend, h.stream(), "c", start=NEWEST)
    ended: list[object] = []

    async def read() -> None:
        try:
            ended.append(await consumer.read_new(10, 5))
        except ClosedError as exc:
            ended.append(exc)

    with Elapsed() as elapsed:
        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await anyio.sleep(0.05)
            await consumer.aclose()
    assert len(ended) == 1 and elapsed.seconds < PROMPT, (ended, elapsed.seconds)


@spi_check("aclose", "append", "open_group_consumer", "open_reader", "destroy", requires=GROUPS)
async def closing_a_backend_closes_it_and_its_handles(h: SpiHarness) -> None:
    """``Backend.aclose`` (idempotent) ends its handles' blocked reads with ClosedError at
    once; then the backend and its handles raise ClosedError."""
    backend = await h.backend()
    stream = h.stream()
    (consumer,) = await h.consumers(backend, stream, "c", start=NEWEST)
    reads: list[Callable[[], Awaitable[Any]]] = [_call(consumer.read_new, 10, 5)]
    if h.capabilities.fan_out:
        reads.append(_call((await backend.open_reader(stream, NEWEST)).read, 10, 5))
    ended: list[BaseException] = []

    async def read(call: Callable[[], Awaitable[Any]]) -> None:
        ended.append(await raises(ClosedError, call, "a read blocked while the backend closed"))

    with Elapsed() as elapsed:
        async with anyio.create_task_group() as tg:
            for call in reads:
                tg.start_soon(read, call)
            await anyio.sleep(0.05)
            await backend.aclose()
            await backend.aclose()
    assert len(ended) == len(reads) and elapsed.seconds < 1.5, elapsed.seconds
    await raises(ClosedError, _call(backend.append, h.entries(stream, 1)), "append")
    await raises(
        ClosedError,
        _call(backend.open_group_consumer, stream, "g", "c", OLDEST),
        "open_group_consumer",
    )
    await raises(ClosedError, _call(backend.open_reader, stream, OLDEST), "open_reader")
    await raises(ClosedError, _call(backend.destroy, stream), "destroy")
    await raises(ClosedError, _call(consumer.read_new, 1, 0), "read_new")


# -- destroying -------------------------------------------------------------------------------------


@spi_check("destroy", "read_new", "read", requires=GROUPS)
async def destroy_ends_blocked_reads(h: SpiHarness) -> None:
    """``destroy`` through this backend wakes its handles' reads blocked on the stream with
    StreamDestroyedError at once; destroying it again, or a missing stream, is fine."""
    backend = await h.backend()
    stream = h.stream()
    (consumer,) = await h.consumers(backend, stream, "c")
    reads: list[Callable[[], Awaitable[Any]]] = [_call(consumer.read_new, 10, 5)]
    if h.capabilities.fan_out:
        reads.append(_call((await backend.open_reader(stream, OLDEST)).read, 10, 5))
    ended: list[BaseException] = []

    async def read(call: Callable[[], Awaitable[Any]]) -> None:
        ended.append(await raises(StreamDestroyedError, call, "a read blocked during destroy"))

    with Elapsed() as elapsed:
        async with anyio.create_task_group() as tg:
            for call in reads:
                tg.start_soon(read, call)
            await anyio.sleep(0.1)
            await backend.destroy(stream)
    assert len(ended) == len(reads) and elapsed.seconds < 0.6 + PROMPT, elapsed.seconds
    await backend.destroy(stream)
    await backend.destroy(h.stream())


@spi_check("destroy", "read_new", "ack", "ensure_group", "read", requires=GROUPS)
async def handles_stay_destroyed(h: SpiHarness) -> None:
    """After ``destroy``, the stream's handles of this backend raise StreamDestroyedError, even
    once the stream id is used again; new handles work on the new stream, and see only its
    entries (whose ids may start over: nothing is assumed of them)."""
    backend = await h.backend()
    stream = h.stream()
    (consumer,) = await h.consumers(backend, stream, "c")
    reader = await backend.open_reader(stream, OLDEST) if h.capabilities.fan_out else None
    (old,) = await h.append(backend, stream, 1)
    await backend.destroy(stream)
    sent = await h.append(backend, stream, 1, first=1)
    await raises(StreamDestroyedError, _call(consumer.read_new, 10, 0), "read_new")
    await raises(StreamDestroyedError, _call(consumer.ack, [old]), "ack")
    await raises(StreamDestroyedError, _call(consumer.ensure_group, OLDEST), "ensure_group")
    if reader is not None:
        await raises(StreamDestroyedError, _call(reader.read, 10, 0), "read")
        await reader.aclose()
    await consumer.aclose()
    (fresh,) = await h.consumers(backend, stream, "c")
    assert ids(await fresh.read_new(10, 0)) == sent, "the destroyed stream's entries came back"
    if h.capabilities.fan_out:
        again = ids(await h.read_all(backend, stream))
        assert again == sent, f"a new reader read {again}, not only the new stream's {sent}"


# -- lost groups ------------------------------------------------------------------------------------


@spi_check(
    "read_new",
    "read_own_pending",
    "claim_idle",
    "ack",
    "nack",
    "touch",
    "ensure_group",
    requires=GROUPS,
    hooks=("lose_group",),
)
async def a_lost_group_raises_until_ensured(h: SpiHarness) -> None:
    """After the group vanished, every group call raises GroupLostError (not a hang, not an empty
    answer) until ``ensure_group`` (idempotent) re-creates it; then new entries are read. (The
    calls checked are those the backend's capabilities allow.)"""
    backend = await h.backend()
    stream = h.stream()
    group = h.name("group")
    consumer = await backend.open_group_consumer(stream, group, "c", OLDEST)
    sent = await h.append(backend, stream, 1)
    await consumer.read_new(1, 0)
    await h.lose_group(backend, stream, group)
    capabilities = h.capabilities
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "read_new": _call(consumer.read_new, 10, 0),
        "read_new(block)": _call(consumer.read_new, 10, 0.05),
        "ack": _call(consumer.ack, sent),
    }
    # Only the calls the core makes of this backend.
    if capabilities.own_pending:
        calls["read_own_pending"] = _call(consumer.read_own_pending, None, 10)
    if capabilities.redelivery:
        calls["nack"] = _call(consumer.nack, sent)
        calls["touch"] = _call(consumer.touch, sent)
        if capabilities.claims:
            calls["claim_idle"] = _call(consumer.claim_idle, 0, 10)
    for name, call in calls.items():
        with anyio.fail_after(h.timing.timeout):
            await raises(GroupLostError, call, f"{name} on a lost group")
    await consumer.ensure_group(OLDEST)
    await consumer.ensure_group(OLDEST)
    new = await h.append(backend, stream, 1, first=1)
    records = await consumer.read_new(10, 0)
    assert records and records[-1].entry_id == new[0], f"read {ids(records)} after re-creation"


@spi_check("ensure_group", "read_new", requires=GROUPS, hooks=("lose_group",))
async def a_group_re_created_by_one_consumer_serves_all(h: SpiHarness) -> None:
    """Once one consumer re-created a lost group, the group's other consumers carry on."""
    backend = await h.backend()
    stream = h.stream()
    group = h.name("group")
    a = await backend.open_group_consumer(stream, group, "a", OLDEST)
    b = await backend.open_group_consumer(stream, group, "b", OLDEST)
    await h.lose_group(backend, stream, group)
    await a.ensure_group(OLDEST)
    sent = await h.append(backend, stream, 1)
    assert ids(await b.read_new(10, 0)) == sent
