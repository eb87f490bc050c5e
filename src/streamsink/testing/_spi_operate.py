"""SPI checks of :class:`~streamsink.backend.OperableBackend` (``Capabilities.operations``): what
operator tools list (streams, groups, consumers, pending entries) and the two changes they make
(deleting idle consumers that hold nothing, exact trims)."""

from __future__ import annotations

from typing import cast

from .._exceptions import ConfigurationError
from ..backend import GroupInfo, OperableBackend, RecordBatch, StartPosition, TrimBound
from ._spi import SpiHarness, ids, raises, spi_check

__all__: list[str] = []

_OPS = ("consumer_groups", "stream_info", "operations")


async def _operable(h: SpiHarness) -> OperableBackend:
    return cast(OperableBackend, await h.backend())


async def _only_group(backend: OperableBackend, stream: str) -> GroupInfo:
    groups = await backend.list_groups(stream)
    assert groups is not None and len(groups) == 1, f"list_groups({stream!r}) = {groups!r}"
    return groups[0]


@spi_check(
    "list_streams",
    "list_groups",
    "list_consumers",
    "list_pending",
    "read_new",
    requires=_OPS,
)
async def operations_list_streams_groups_consumers_and_pending(h: SpiHarness) -> None:
    """``list_streams`` has every stream appended to and none never created; ``list_groups``,
    ``list_consumers`` and ``list_pending`` show who holds what with delivery counts, page by
    ``after``, filter by consumer, change nothing (a second listing is the same), and are None for
    a missing stream or group. A bad count or ``after`` raises ``ConfigurationError``."""
    backend = await _operable(h)
    stream, never = h.stream(), h.stream()
    sent = await h.append(backend, stream, 3)
    streams = await backend.list_streams()
    assert stream in streams, f"{stream!r} missing from list_streams() = {streams[:20]}"
    assert never not in streams, f"a stream never created is listed: {never!r}"
    assert streams == sorted(streams), f"list_streams() is not sorted: {streams[:20]}"
    assert await backend.list_groups(never) is None, "list_groups of a missing stream"
    assert await backend.list_groups(stream) == [], "groups on a stream nobody subscribed to"
    a, b = await h.consumers(backend, stream, "a", "b")
    await _only_group(backend, stream)  # the group exists before anything is read
    assert ids(await a.read_new(2, 0)) == sent[:2]
    assert ids(await b.read_new(2, 0)) == sent[2:]
    info = await _only_group(backend, stream)
    got = (info.consumers, info.pending, info.last_delivered_id, info.lag)
    assert got[:3] == (2, 3, sent[2]) and info.lag in (0, None), f"group after 3 reads: {info}"
    assert info.idle is not None and 0 <= info.idle < 60, f"group idle after reads: {info}"
    name = info.name
    consumers = await backend.list_consumers(stream, name)
    assert consumers is not None, "list_consumers is None for an existing group"
    assert [(c.name, c.pending) for c in consumers] == [("a", 2), ("b", 1)], consumers
    assert all(0 <= c.idle < 60 for c in consumers), f"idle times right after reads: {consumers}"
    for _ in range(2):  # listing twice: it must not count as a delivery
        rows = await backend.list_pending(stream, name)
        assert rows is not None, "list_pending is None for an existing group"
        got_rows = [(r.entry_id, r.consumer, r.deliveries) for r in rows]
        assert got_rows == [(sent[0], "a", 1), (sent[1], "a", 1), (sent[2], "b", 1)], got_rows
        assert all(0 <= r.idle < 60 for r in rows), rows
    page = await backend.list_pending(stream, name, after=sent[0], count=1)
    assert [r.entry_id for r in page or []] == [sent[1]], f"after={sent[0]}, count=1: {page}"
    only_b = await backend.list_pending(stream, name, consumer="b")
    assert [r.entry_id for r in only_b or []] == [sent[2]], f"consumer='b': {only_b}"
    assert await backend.list_consumers(stream, "no-such-group") is None
    assert await backend.list_pending(stream, "no-such-group") is None
    assert await backend.list_consumers(never, name) is None
    await raises(ConfigurationError, lambda: backend.list_pending(stream, name, count=0), "count=0")
    await raises(
        ConfigurationError, lambda: backend.list_pending(stream, name, after="x"), "after='x'"
    )
    await a.ack(sent[:2])
    await b.ack(sent[2:])


@spi_check("delete_idle_consumer", "list_consumers", "read_new", requires=_OPS)
async def delete_idle_consumer_never_drops_one_holding_entries(h: SpiHarness) -> None:
    """``delete_idle_consumer`` deletes a consumer that holds nothing and was idle for
    ``min_idle``; it keeps one holding entries whatever its idle time, one not idle long enough,
    and returns False for a missing consumer or group."""
    backend = await _operable(h)
    stream = h.stream()
    sent = await h.append(backend, stream, 2)
    holder, idler = await h.consumers(backend, stream, "holder", "idler")
    assert ids(await holder.read_new(1, 0)) == sent[:1]
    # A read that returns an entry makes the consumer exist on every backend (on Redis, an
    # empty one may not); acknowledged, the consumer holds nothing.
    assert ids(await idler.read_new(1, 0)) == sent[1:]
    await idler.ack(sent[1:])
    group = (await _only_group(backend, stream)).name
    deleted = await backend.delete_idle_consumer(stream, group, "holder", min_idle=0)
    assert not deleted, "deleted a consumer that holds an entry"
    deleted = await backend.delete_idle_consumer(stream, group, "idler", min_idle=3600)
    assert not deleted, "deleted a consumer idle for less than min_idle=3600"
    deleted = await backend.delete_idle_consumer(stream, group, "idler", min_idle=0)
    assert deleted, "kept an idle consumer holding nothing"
    names = [(c.name, c.pending) for c in await backend.list_consumers(stream, group) or []]
    assert names == [("holder", 1)], f"consumers after deleting idler: {names}"
    pending = [(r.entry_id, r.consumer) for r in await backend.list_pending(stream, group) or []]
    assert pending == [(sent[0], "holder")], f"pending after deleting idler: {pending}"
    assert not await backend.delete_idle_consumer(stream, group, "nobody", min_idle=0)
    assert not await backend.delete_idle_consumer(stream, "no-such-group", "holder", min_idle=0)
    await raises(
        ConfigurationError,
        lambda: backend.delete_idle_consumer(stream, group, "idler", min_idle=-1),
        "min_idle=-1",
    )
    await holder.ack(sent[:1])
    assert await backend.delete_idle_consumer(stream, group, "holder", min_idle=0), (
        "kept a consumer that acknowledged everything it held"
    )


@spi_check("trim_stream", "open_reader", requires=_OPS)  # stream_info: only to look
async def trim_stream_removes_exactly(h: SpiHarness) -> None:
    """``trim_stream`` removes exactly what its bound says and returns how many: ``maxlen(n)``
    keeps the newest n, ``minid(id)`` keeps that id and later, ``through(id)`` removes that id
    too; a missing stream trims 0; a reader behind the cut continues after it (with a gap where
    the backend ``reports_gaps``); a bad id raises ``ConfigurationError``."""
    backend = await _operable(h)
    stream = h.stream()
    sent = await h.append(backend, stream, 10)
    reader = await backend.open_reader(stream, StartPosition.oldest())
    assert ids(await reader.read(1, 0)) == sent[:1]
    expected = [(TrimBound.maxlen(7), 3, 3), (TrimBound.minid(sent[5]), 2, 5)]
    expected.append((TrimBound.through(sent[6]), 2, 7))
    for bound, removed, first in expected:
        got = await backend.trim_stream(stream, bound)
        assert got == removed, f"trim_stream({bound}) removed {got}, expected {removed}"
        info = await backend.stream_info(stream)
        assert info is not None and info.length == 10 - first, (bound, info)
        assert info.first_id == sent[first], f"first id after trim_stream({bound}): {info}"
    assert await backend.trim_stream(stream, TrimBound.through(sent[6])) == 0, "trimmed twice"
    assert await backend.trim_stream(h.stream(), TrimBound.maxlen(0)) == 0, "a missing stream"
    batch = await reader.read(10, 0)
    assert ids(batch) == sent[7:], f"a reader behind the cut read {ids(batch)}"
    if backend.capabilities.reports_gaps:
        gap = batch.gap if isinstance(batch, RecordBatch) else None
        assert gap is not None and gap.before == sent[7], f"no gap before {sent[7]}: {gap}"
        assert gap.count in (6, None), gap
    await raises(
        ConfigurationError,
        lambda: backend.trim_stream(stream, TrimBound.minid("not an id")),
        "trim_stream(minid('not an id'))",
    )
    assert await backend.trim_stream(stream, TrimBound.maxlen(0)) == 3
    info = await backend.stream_info(stream)
    assert info is None or info.length == 0, f"after maxlen(0): {info}"
