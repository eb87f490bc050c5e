"""Group loss: ``XGROUP DESTROY`` and ``FLUSHALL`` under two live subscriptions of one group, with
a producer sending all along. The group is re-created (no hot loop on NOGROUP) and consumption
resumes by itself (docs/reliability.md, guarantee 5).

"Lost" is defined per disruption:

- ``XGROUP DESTROY`` deletes only the group: every send that returned must be consumed.
- ``FLUSHALL`` deletes the data too: every send that *started after* the flush returned must be
  consumed; sends that returned before the flush started and were not consumed yet were erased
  by the flush (counted, not lost: no transport can deliver deleted data); sends overlapping the
  flush may go either way.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
import redis.asyncio as aioredis

import streamsink
from streamsink import StreamEvent, StreamsinkError, Subscription
from streamsink.backend import GroupLostError
from tests.support.leaks import redis_leftovers
from tests.support.redis_server import RedisServer

from .support import record_figures

pytestmark = [pytest.mark.anyio, pytest.mark.redis, pytest.mark.timeout(60)]

EVENTS = 1500
RATE = 500.0  # events per second: the stream lasts 3 s
DISRUPT_AT = 1.0  # seconds after the producer starts
GROUP = "healing"
MAX_RECREATIONS = 4  # per subscription and disruption; a hot loop would make hundreds


async def _stream_through(
    url: str, session: str, disrupt: Callable[[], Awaitable[None]]
) -> dict[str, Any]:
    """Send EVENTS at RATE while two subscriptions of one group consume; call ``disrupt`` at
    DISRUPT_AT. Returns what was sent (with times), seen, and the statistics."""
    stream = f"session/{session}"
    sends: list[tuple[int, float, float]] = []  # seq, started, returned
    seen: list[int] = []
    errors: list[StreamsinkError] = []
    window: list[float] = []
    async with streamsink.connect(f"{url}?maxlen=0&socket_timeout=1") as streams:
        subscribers = [
            streams.new_subscriber(
                group=GROUP,
                ack_grace_period=1.0,
                claim_interval=0.1,
                reconnect_timeout=30,
                on_error=errors.append,
            )
            for _ in range(2)
        ]

        async def consume(subscription: Subscription[Any]) -> None:
            async for event in subscription:
                seen.append(int(event.payload["seq"]))

        async def produce() -> None:
            start = anyio.current_time()
            for seq in range(EVENTS):
                await anyio.sleep(max(0.0, start + seq / RATE - anyio.current_time()))
                began = anyio.current_time()
                event = StreamEvent("tool_start", "r", session, payload={"seq": seq})
                await streams.sink.send(event)
                sends.append((seq, began, anyio.current_time()))

        async def disrupt_later() -> None:
            await anyio.sleep(DISRUPT_AT)
            window.append(anyio.current_time())
            await disrupt()
            window.append(anyio.current_time())

        with anyio.fail_after(30):
            async with (
                subscribers[0].subscribe(stream) as first,
                subscribers[1].subscribe(stream) as second,
                anyio.create_task_group() as tg,
            ):
                tg.start_soon(consume, first)
                tg.start_soon(consume, second)
                tg.start_soon(disrupt_later)
                await produce()
                must = {seq for seq, began, _ in sends if began > window[-1]}
                while not must <= set(seen):  # noqa: ASYNC110 (a condition on a list)
                    await anyio.sleep(0.05)
                await anyio.sleep(0.3)  # let stragglers (redeliveries) arrive
                tg.cancel_scope.cancel()
            stats = [first.statistics(), second.statistics()]
        await streams.backend.destroy(stream)
    return {"sends": sends, "seen": seen, "errors": errors, "window": window, "stats": stats}


def _figures(run: dict[str, Any], lost: set[int], erased: set[int]) -> dict[str, Any]:
    seen = run["seen"]
    return {
        "sent": len(run["sends"]),
        "received": len(seen),
        "duplicates": len(seen) - len(set(seen)),
        "erased_by_flush": len(erased),
        "lost": len(lost),
        "groups_recreated": [s.groups_recreated for s in run["stats"]],
        "group_lost_reports": sum(isinstance(e, GroupLostError) for e in run["errors"]),
        "redelivered": sum(s.redelivered for s in run["stats"]),
    }


def _check_healing(run: dict[str, Any]) -> None:
    recreated = [s.groups_recreated for s in run["stats"]]
    assert sum(recreated) >= 1, recreated
    assert all(r <= MAX_RECREATIONS for r in recreated), recreated
    assert sum(isinstance(e, GroupLostError) for e in run["errors"]) <= 2 * MAX_RECREATIONS


async def test_group_destroyed_under_subscriptions(redis_url: str) -> None:
    session = f"faults-destroy-{uuid.uuid4().hex[:8]}"
    key = f"pulse:stream:session/{session}"
    raw = aioredis.Redis.from_url(redis_url, protocol=2)
    try:
        run = await _stream_through(
            redis_url,
            session,
            lambda: raw.xgroup_destroy(key, GROUP),  # type: ignore[arg-type,return-value]
        )
    finally:
        await raw.aclose()
    lost = {seq for seq, _, _ in run["sends"]} - set(run["seen"])
    record_figures("group_loss[XGROUP DESTROY]", _figures(run, lost, set()))
    assert not lost, f"lost: {sorted(lost)[:20]}"
    _check_healing(run)


async def test_flushall_under_subscriptions(own_server: RedisServer) -> None:
    session = f"faults-flush-{uuid.uuid4().hex[:8]}"
    raw = aioredis.Redis.from_url(own_server.url, protocol=2)
    try:
        run = await _stream_through(own_server.url, session, raw.flushall)  # type: ignore[arg-type]
    finally:
        await raw.aclose()
    flush_started, flush_returned = run["window"]
    seen = set(run["seen"])
    after = {seq for seq, began, _ in run["sends"] if began > flush_returned}
    before = {seq for seq, _, returned in run["sends"] if returned < flush_started}
    lost = after - seen
    erased = before - seen
    record_figures("group_loss[FLUSHALL]", _figures(run, lost, erased))
    assert not lost, f"lost: {sorted(lost)[:20]}"
    assert len(after) > EVENTS / 3  # the flush came mid-stream
    _check_healing(run)
    assert redis_leftovers(own_server.port) == []


async def test_flushall_under_an_idle_subscription(own_server: RedisServer) -> None:
    """A subscription that has read nothing yet (default start: newest) keeps every event sent
    right after a FLUSHALL. (It used to re-create the group at "newest" and skip them.)"""
    session = f"faults-idle-{uuid.uuid4().hex[:8]}"
    stream = f"session/{session}"
    errors: list[StreamsinkError] = []
    raw = aioredis.Redis.from_url(own_server.url, protocol=2)
    try:
        async with streamsink.connect(f"{own_server.url}?socket_timeout=1") as streams:
            subscriber = streams.new_subscriber(group=GROUP, on_error=errors.append)
            seen: list[int] = []
            async with subscriber.subscribe(stream) as events:
                await anyio.sleep(0.2)  # idle in a blocking read
                await raw.flushall()
                for seq in range(20):  # at once, while the group is gone
                    await streams.sink.send(
                        StreamEvent("tool_start", "r", session, payload={"seq": seq})
                    )
                with anyio.move_on_after(5):
                    async for event in events:
                        seen.append(event.payload["seq"])
                        if len(seen) == 20:
                            break
                stats = events.statistics()
    finally:
        await raw.aclose()
    record_figures(
        "group_loss[FLUSHALL, idle subscription]",
        {"sent": 20, "received": len(seen), "lost": 20 - len(set(seen))},
    )
    assert seen == list(range(20))
    assert stats.groups_recreated == 1
    assert any(isinstance(e, GroupLostError) for e in errors)
    assert redis_leftovers(own_server.port) == []
