"""SPI checks of shared reads (``Capabilities.shared_reads``): starts resolved to cursors, many
cursors read in one call, blocking, interrupting, destroying, closing and gap reports."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import cast

import anyio

from .._exceptions import ClosedError, ConfigurationError
from ..backend import (
    Backend,
    RecordBatch,
    SharedCursor,
    SharedReadBackend,
    SharedReads,
    StartPosition,
    StreamBatch,
    StreamDestroyedError,
)
from ._spi import NEWEST, OLDEST, PROMPT, Elapsed, SpiHarness, ids, raises, spi_check

__all__: list[str] = []

SHARED = ("fan_out", "shared_reads")


async def _open(h: SpiHarness, *, maxlen: int | None = None) -> tuple[Backend, SharedReads]:
    backend = await h.backend(maxlen=maxlen)
    shared = await cast(SharedReadBackend, backend).open_shared_reads()
    assert shared.lanes >= 1, f"SharedReads.lanes is {shared.lanes}"
    return backend, shared


def _lane(shared: SharedReads, stream_id: str) -> int:
    lane = shared.lane(stream_id, [0] * shared.lanes)
    assert isinstance(lane, int) and 0 <= lane < shared.lanes, f"lane() gave {lane!r}"
    return lane


async def _drain(shared: SharedReads, cursor: SharedCursor) -> tuple[list[str], SharedCursor]:
    """Every entry after ``cursor``, read without waiting; the ids and the cursor at the end."""
    got: list[str] = []
    while True:
        (batch,) = await shared.read([cursor], 3, 0, lane=None)
        assert batch.error is None, f"read of {cursor!r} failed: {batch.error!r}"
        cursor = batch.cursor
        got += ids(batch.records)
        if not batch.records:
            return got, cursor


@spi_check("open_shared_reads", "resolve", "read", requires=SHARED)
async def shared_reads_resolve_starts(h: SpiHarness) -> None:
    """A start resolves to a cursor as a reader's does: ``newest`` now (nothing appended later
    is missed, on a missing stream too), ``oldest``, ``after(id)`` exclusive; ``after`` moves to
    the last id read, and a cursor read to the end reads nothing more."""
    backend, shared = await _open(h)
    stream, missing = h.stream(), h.stream()
    sent = await h.append(backend, stream, 3)
    starts = {
        "newest": (await shared.resolve(stream, NEWEST), []),
        "oldest": (await shared.resolve(stream, OLDEST), sent),
        "after": (await shared.resolve(stream, StartPosition.after(sent[0])), sent[1:]),
        "missing": (await shared.resolve(missing, NEWEST), None),
    }
    later = await h.append(backend, stream, 1, first=3)
    later_missing = await h.append(backend, missing, 2)
    for name, (cursor, expected) in starts.items():
        assert cursor.stream_id == (missing if name == "missing" else stream), cursor
        got, end = await _drain(shared, cursor)
        want = later_missing if expected is None else expected + later
        assert got == want, f"a cursor from {name} read {got}, not {want}"
        assert end.after == want[-1], f"after reading {want}, the cursor is after {end.after}"
    await shared.aclose()
    await shared.aclose()


@spi_check("read", requires=SHARED)
async def one_read_serves_many_cursors(h: SpiHarness) -> None:
    """One read gives each cursor its own batch, in their order, ``count`` at most: cursors on
    several streams, and two on one stream at different places."""
    backend, shared = await _open(h)
    one, two, idle = h.stream(), h.stream(), h.stream()
    cursors = [await shared.resolve(s, NEWEST) for s in (one, two, idle)]
    sent_one = await h.append(backend, one, 4)
    sent_two = await h.append(backend, two, 1, first=4)
    cursors.append(await shared.resolve(one, StartPosition.after(sent_one[1])))
    lane = _lane(shared, one)
    batches = await shared.read(cursors, 3, 0, lane=lane)
    assert len(batches) == 4, f"{len(batches)} batches for 4 cursors"
    got = [ids(batch.records) for batch in batches]
    assert got[:3] == [sent_one[:3], sent_two, []], got
    # A cursor read with an earlier one of its stream may get fewer than count, never others.
    assert got[3] and got[3] == sent_one[2 : 2 + len(got[3])], got[3]
    assert all(isinstance(batch, StreamBatch) and batch.error is None for batch in batches)
    again = await shared.read([b.cursor for b in batches], 3, 0, lane=lane)
    assert [ids(b.records) for b in again[:3]] == [sent_one[3:], [], []]
    assert got[3] + ids(again[3].records) == sent_one[2:], "the later cursor skipped entries"
    assert again[0].cursor.after == again[3].cursor.after == sent_one[-1], (
        "two cursors read to the same entry must stand at the same place"
    )
    for count in (0, -1):
        await raises(
            ConfigurationError, partial(shared.read, cursors, count, 0, lane=lane), "count"
        )


@spi_check("read", requires=SHARED)
async def a_blocked_shared_read_wakes_on_any_stream(h: SpiHarness) -> None:
    """A read blocked on many streams returns soon after an entry is appended to any of them,
    and after ``block`` seconds, empty, when nothing comes."""
    backend, shared = await _open(h)
    streams = [h.stream() for _ in range(3)]
    cursors = [await shared.resolve(s, NEWEST) for s in streams]
    lane = _lane(shared, streams[0])
    result: list[Sequence[StreamBatch]] = []
    with Elapsed() as waited:
        async with anyio.create_task_group() as tg:

            async def read() -> None:
                result.append(await shared.read(cursors, 10, 5.0, lane=lane))

            tg.start_soon(read)
            await anyio.sleep(0.1)
            sent = await h.append(backend, streams[2], 1)
    assert waited.seconds < 0.1 + PROMPT, f"a blocked read took {waited.seconds:.2f} s to wake"
    assert [ids(b.records) for b in result[0]] == [[], [], sent]
    with Elapsed() as timed:
        empty = await shared.read([b.cursor for b in result[0]], 10, 0.2, lane=lane)
    assert not any(b.records for b in empty)
    assert 0.15 <= timed.seconds < 0.2 + PROMPT, f"a 0.2 s read returned in {timed.seconds:.2f} s"


@spi_check("read", "interrupt", requires=SHARED)
async def interrupt_ends_a_blocked_read_without_error(h: SpiHarness) -> None:
    """``interrupt(lane)`` makes the read blocked on that lane return promptly, with nothing and
    without error; its cursors stay valid (what comes next is read); interrupting an idle lane is
    harmless."""
    backend, shared = await _open(h)
    stream = h.stream()
    cursor = await shared.resolve(stream, NEWEST)
    lane = _lane(shared, stream)
    await shared.interrupt(lane)
    result: list[Sequence[StreamBatch]] = []
    returned = anyio.Event()
    async with anyio.create_task_group() as tg:

        async def read() -> None:
            result.append(await shared.read([cursor], 10, 5.0, lane=lane))
            returned.set()

        tg.start_soon(read)
        await anyio.sleep(0.1)
        with Elapsed() as waited:
            await shared.interrupt(lane)
            with anyio.fail_after(5):
                await returned.wait()
    assert waited.seconds < PROMPT, f"an interrupted read took {waited.seconds:.2f} s to return"
    ((batch,),) = result
    assert not batch.records and batch.error is None, batch
    sent = await h.append(backend, stream, 2)
    got, _ = await _drain(shared, batch.cursor)
    assert got == sent, f"after an interrupt the cursor read {got}, not {sent}"


@spi_check("read", "destroy", requires=SHARED)
async def destroy_ends_shared_reads_of_the_stream(h: SpiHarness) -> None:
    """After ``destroy(stream)`` a read of a cursor on it gives ``StreamDestroyedError`` in its
    batch (a blocked read at once); cursors on other streams read on."""
    backend, shared = await _open(h)
    gone, kept = h.stream(), h.stream()
    await h.append(backend, gone, 1)
    cursors = [await shared.resolve(gone, NEWEST), await shared.resolve(kept, NEWEST)]
    lane = _lane(shared, gone)
    result: list[Sequence[StreamBatch]] = []
    with Elapsed() as waited:
        async with anyio.create_task_group() as tg:

            async def read() -> None:
                result.append(await shared.read(cursors, 10, 5.0, lane=lane))

            tg.start_soon(read)
            await anyio.sleep(0.1)
            await backend.destroy(gone)
    assert waited.seconds < 0.1 + PROMPT, f"destroy woke a blocked read in {waited.seconds:.2f} s"
    batches = result[0]
    if batches[0].error is None:  # woken without the error: the next read must have it
        batches = await shared.read([b.cursor for b in batches], 10, 0, lane=lane)
    assert isinstance(batches[0].error, StreamDestroyedError), batches[0]
    sent = await h.append(backend, kept, 1)
    got, _ = await _drain(shared, batches[1].cursor)
    assert got == sent, got


@spi_check("read", "aclose", requires=SHARED)
async def closing_the_backend_ends_shared_reads(h: SpiHarness) -> None:
    """The backend's ``aclose()`` ends a blocked shared read at once with a ClosedError, and
    later reads and resolves raise one too."""
    backend, shared = await _open(h)
    stream = h.stream()
    cursor = await shared.resolve(stream, NEWEST)
    lane = _lane(shared, stream)
    failed: list[BaseException] = []
    with Elapsed() as waited:
        async with anyio.create_task_group() as tg:

            async def read() -> None:
                try:
                    await shared.read([cursor], 10, 5.0, lane=lane)
                except ClosedError as exc:
                    failed.append(exc)

            tg.start_soon(read)
            await anyio.sleep(0.1)
            await backend.aclose()
    assert waited.seconds < 0.1 + PROMPT, f"close ended a blocked read in {waited.seconds:.2f} s"
    assert failed, "a read blocked while the backend closed did not raise a ClosedError"
    await raises(ClosedError, lambda: shared.read([cursor], 10, 0, lane=None), "read after close")
    await raises(ClosedError, lambda: shared.resolve(stream, OLDEST), "resolve after close")


@spi_check("read", requires=(*SHARED, "trim", "reports_gaps"))
async def shared_reads_report_entries_trimmed_unread(h: SpiHarness) -> None:
    """A cursor that trimming overtook gets the loss as a gap (a :class:`RecordBatch`), with the
    number of entries lost, as a reader does; a cursor that kept up reports nothing."""
    backend, shared = await _open(h, maxlen=10)
    stream = h.stream()
    cursor = await shared.resolve(stream, NEWEST)
    sent = await h.append(backend, stream, 500)
    (batch,) = await shared.read([cursor], 1000, 0, lane=None)
    records = batch.records
    assert type(records) is RecordBatch and records.gap is not None, "no gap reported"
    kept = ids(records)
    assert kept and kept == sent[-len(kept) :], f"read {len(kept)} entries, not the newest"
    assert records.gap.count == 500 - len(kept), f"gap of {records.gap.count}, kept {len(kept)}"
    more = await h.append(backend, stream, 3, first=500)
    (after,) = await shared.read([batch.cursor], 1000, 0, lane=None)
    assert ids(after.records) == more
    assert getattr(after.records, "gap", None) is None, "a cursor that kept up reported a gap"
