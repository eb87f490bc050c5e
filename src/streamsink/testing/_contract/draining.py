"""Rule 18 of docs/contract.md: a drain gets every session's events through one group, with the
semantics of any group subscription (docs/drain.md)."""

from __future__ import annotations

from typing import Any

import anyio

from ..._deadletter import decode_dead_letter
from ..._drain import DrainOptions, decode_drain_copy
from ..._events import StreamEvent
from ..._exceptions import DecodeError, StreamsinkError
from ..._sink import PublishedEvent
from ...backend import Backend, Entry
from .._harness import Harness
from ._registry import check

__all__: list[str] = []


def _drain(h: Harness, shards: int = 4) -> DrainOptions:
    """Drain options with a prefix no other check uses; its shards (and their dead-letter
    streams) are destroyed when the check ends."""
    drain = DrainOptions(shards=shards, prefix=h.name("drain"))
    for stream_id in drain.stream_ids():
        h._streams += [stream_id, f"{stream_id}:dlq"]  # the harness destroys what it names
    return drain


async def _send(
    h: Harness, backend: Backend, drain: DrainOptions, sessions: list[str], per: int
) -> list[PublishedEvent]:
    """``per`` events to each of ``sessions``, interleaved, through a sink with ``drain``."""
    sink = h.sink(backend, drain=drain)
    sent = []
    for index in range(per):
        for session in sessions:
            sent.append(await sink.send(h.event(session, index)))
    return sent


def _origin(event: Any) -> tuple[str, str]:
    assert isinstance(event, StreamEvent), event
    assert event.stream_id is not None and event.entry_id is not None, event
    return event.stream_id, event.entry_id


@check("18", "consumer_groups")
async def drain_gets_every_session_once(h: Harness) -> None:
    """One drain group gets every event of every session exactly once, with its own stream id
    and entry id, each session in order, sessions created while the drain was down included."""
    backend = await h.backend()
    drain = _drain(h)
    group = h.name("g")
    early = await _send(h, backend, drain, [h.session() for _ in range(3)], 2)
    async with h.subscriber(backend, group=group).subscribe_drain(drain) as events:
        got = [_origin(e) for e in await h.take(events, len(early))]
    assert sorted(got) == sorted((p.stream_id, p.entry_id) for p in early), got
    # The drain is down: new sessions start, an old one goes on.
    late = await _send(h, backend, drain, [h.session() for _ in range(5)], 3)
    late += await _send(h, backend, drain, [early[0].event.session_id], 1)
    async with h.subscriber(backend, group=group).subscribe_drain(drain) as events:
        got = [_origin(e) for e in await h.take(events, len(late))]
        await h.nothing_within(events, h.timing.grace)
    expected = [(p.stream_id, p.entry_id) for p in late]
    assert sorted(got) == sorted(expected), f"duplicates or gaps: {got} != {expected}"
    for stream_id in {s for s, _ in expected}:
        mine = [i for s, i in got if s == stream_id]
        assert mine == [i for s, i in expected if s == stream_id], f"{stream_id} out of order"


@check("18", "consumer_groups")
async def drain_consumers_split_events(h: Harness) -> None:
    """Two consumers of one drain group split the events: each event reaches one of them."""
    backend = await h.backend()
    drain = _drain(h)
    group = h.name("g")
    total = 40
    got: list[list[tuple[str, str]]] = [[], []]
    done = anyio.Event()

    async def consume(index: int) -> None:
        subscriber = h.subscriber(backend, group=group, buffer=1, fetch_count=1)
        async with subscriber.subscribe_drain(drain) as events:
            async for event in events:
                got[index].append(_origin(event))
                await anyio.sleep(0.002)
                if sum(map(len, got)) >= total:
                    done.set()
                    return

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume, 0)
        tg.start_soon(consume, 1)
        sent = await _send(h, backend, drain, [h.session() for _ in range(8)], total // 8)
        with anyio.fail_after(h.timing.timeout):
            await done.wait()
        tg.cancel_scope.cancel()
    assert sorted(got[0] + got[1]) == sorted((p.stream_id, p.entry_id) for p in sent), got
    assert got[0] and got[1], f"one consumer got everything: {[len(g) for g in got]}"


@check("18", "consumer_groups", "redelivery", "fan_out")
async def drain_redelivers_and_dead_letters(h: Harness) -> None:
    """A drain entry left unacknowledged is redelivered (count 2) to another consumer of the
    group; one still unacknowledged after max_deliveries goes to its shard's dead-letter stream,
    from which its origin can be read."""
    backend = await h.backend()
    drain = _drain(h, shards=2)
    group = h.name("g")
    (sent,) = await _send(h, backend, drain, [h.session()], 1)
    options = {"group": group, "max_deliveries": 2}
    async with h.subscriber(backend, **options).subscribe_drain_manual(drain) as first:
        (held,) = await h.take(first, 1)
        assert held.delivery_count == 1 and _origin(held.event) == sent[1:], held
        async with h.subscriber(backend, **options).subscribe_drain_manual(drain) as second:
            again = await h.first_of(first, second)
            assert again.entry_id == held.entry_id and again.delivery_count == 2, again
            assert _origin(again.event) == sent[1:], again
            await again.nack()
            await h.nothing_within(second, h.timing.grace * 3)
    shard = drain.shard_of(sent.stream_id)
    (record,) = await h.read_all(backend, f"{shard}:dlq")
    letter = decode_dead_letter(record.payload or b"")
    assert letter.origin_stream == shard and "max_deliveries=2" in letter.reason, letter
    copy = decode_drain_copy(letter.payload or b"")
    assert (copy.stream_id, copy.entry_id) == sent[1:], copy


@check("18", "consumer_groups", "fan_out")
async def drain_dead_letters_poison(h: Harness) -> None:
    """An undecodable drain entry is reported, dead-lettered to its shard's dead-letter stream
    and acknowledged in auto mode; the drain goes on."""
    backend = await h.backend()
    drain = _drain(h, shards=2)
    shard = drain.stream_ids()[0]
    await backend.append([Entry(shard, "tool_start", b"not a drain copy")])
    sent = await _send(h, backend, drain, [h.session() for _ in range(4)], 1)
    errors: list[StreamsinkError] = []
    subscriber = h.subscriber(backend, on_error=errors.append)
    async with subscriber.subscribe_drain(drain) as events:
        got = [_origin(e) for e in await h.take(events, len(sent))]
        await h.nothing_within(events, h.timing.grace)
        stats = events.statistics()
    assert sorted(got) == sorted((p.stream_id, p.entry_id) for p in sent), got
    assert stats.decode_errors == 1 and stats.dead_lettered == 1, stats
    assert any(isinstance(e, DecodeError) and e.stream_id == shard for e in errors), errors
    (record,) = await h.read_all(backend, f"{shard}:dlq")
    letter = decode_dead_letter(record.payload or b"")
    assert letter.payload == b"not a drain copy" and "undecodable" in letter.reason, letter
