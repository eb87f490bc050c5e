"""SPI checks of closing, destroying, and groups lost behind the backend's back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from .._exceptions import ClosedError
from ..backend import GroupLostError, StreamDestroyedError
from ._spi import GROUPS, NEWEST, OLDEST, PROMPT, Elapsed, SpiHarness, ids, raises, spi_check
from ._spi import call as _call

__all__: list[str] = []


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
