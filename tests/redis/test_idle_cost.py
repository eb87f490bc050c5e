"""What idle group subscriptions ask of Redis (``INFO commandstats`` over a short window, on the
real server: fakeredis keeps no command statistics): a summary per group and grace period, no
claim scans, no ``XINFO CONSUMERS`` on reads of a consumer that holds nothing; and what is
pending is still claimed. The figures for 1,000 subscriptions are ``benchmarks/idle_groups.py``'s.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from typing import Any

import anyio
import pytest
import redis.asyncio as aioredis

from streamsink import StreamEvent, StreamSink, StreamSubscriber, SubscriberOptions
from streamsink_redis import RedisBackend

from .conftest import with_query

pytestmark = [pytest.mark.redis, pytest.mark.anyio]

GRACE = 0.5
INTERVAL = 0.05
STREAMS = 4
PER_STREAM = 3


@pytest.fixture
def url(redis_url: str) -> str:
    """The real server only."""
    return redis_url


def _calls(stats: dict[str, Any]) -> Counter[str]:
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})


async def _idle_window(
    url: str, raw: aioredis.Redis, seconds: float, **query: object
) -> Counter[str]:
    """Commands run by STREAMS x PER_STREAM idle subscriptions of one group over ``seconds``,
    once their looks at the group have grown to one per grace period."""
    run = uuid.uuid4().hex[:8]
    options = SubscriberOptions(group="idle", ack_grace_period=GRACE, claim_interval=INTERVAL)
    async with contextlib.AsyncExitStack() as stack:
        backend = await stack.enter_async_context(await RedisBackend.open(with_query(url, **query)))
        subscriber = StreamSubscriber(backend, options)
        for i in range(STREAMS):
            for _ in range(PER_STREAM):
                await stack.enter_async_context(subscriber.subscribe(f"idle/{run}-{i}"))
        await anyio.sleep(3 * GRACE)  # past the first, shorter looks
        before = _calls(await raw.info("commandstats"))
        await anyio.sleep(seconds)
        after = _calls(await raw.info("commandstats"))
    return after - before - Counter({"info": 1})


async def test_idle_subscriptions_ask_for_a_summary_per_group_and_grace_period(
    url: str, raw: aioredis.Redis
) -> None:
    seconds = 4 * GRACE
    calls = await _idle_window(url, raw, seconds, pulse_keepalive="false")
    # One XPENDING per stream (not per subscription) and grace period, give or take one.
    assert calls["xpending"] <= STREAMS * (seconds / GRACE + 1), calls
    assert calls["xpending"] >= STREAMS * (seconds / GRACE - 1), calls
    assert calls["xautoclaim"] == 0, calls
    assert calls["xinfo|consumers"] == 0, calls  # they hold nothing: no deletion to look for
    assert calls["xreadgroup"] == 0, calls  # reads block for 60 s
    assert set(calls) <= {"xpending"}, calls


async def test_with_pulse_keepalive_one_script_refreshes_the_group(
    url: str, raw: aioredis.Redis
) -> None:
    """pulse's keep-alive is written every grace period for each consumer, by one script for all
    the group's consumers in the process (with no pulse replica following the map, no
    messages); one read at a time ends for it; no claim scans, and no XINFO CONSUMERS for
    consumers holding nothing."""
    seconds = 4 * GRACE
    calls = await _idle_window(url, raw, seconds, pulse_keepalive="true")
    periods = seconds / GRACE
    refreshes = calls["evalsha"] + calls["eval"]
    assert periods - 1 <= refreshes <= periods + 1, calls
    assert calls["publish"] == 0, calls
    assert calls["hset"] == 2 * refreshes, calls  # all fields in one, then =kind
    assert calls["hincrby"] == refreshes, calls  # one revision bump per script
    assert calls["xinfo|consumers"] == 0, calls
    assert calls["xreadgroup"] <= 2 * (periods + 1), calls  # not one per subscription
    assert calls["xautoclaim"] == 0, calls


async def test_an_entry_left_by_a_consumer_that_died_is_still_claimed(
    url: str, raw: aioredis.Redis
) -> None:
    """An idle subscription gets an entry another consumer took and never acked, once it is
    idle past the grace period, though nothing else woke it."""
    run = uuid.uuid4().hex[:8]
    stream, key = f"idle/{run}", f"pulse:stream:idle/{run}"
    options = SubscriberOptions(group="idle", ack_grace_period=GRACE, claim_interval=INTERVAL)
    async with await RedisBackend.open(with_query(url, pulse_keepalive="false")) as backend:
        subscriber = StreamSubscriber(backend, options)
        async with subscriber.subscribe(stream) as events:
            await anyio.sleep(3 * GRACE)  # idle: looks once per grace period by now
            # An entry in the stream's format, taken in one MULTI by a consumer that dies.
            sent = await _template(backend, raw, run)
            pipe = raw.pipeline(transaction=True)
            pipe.xadd(key, sent)
            pipe.xreadgroup("idle", "dead", {key: ">"}, count=1)
            await pipe.execute()
            with anyio.fail_after(GRACE + 2):
                event = await events.__anext__()
            assert event.payload == "template"
        await raw.xgroup_delconsumer(key, "idle", "dead")


async def _template(backend: RedisBackend, raw: aioredis.Redis, run: str) -> dict[bytes, bytes]:
    """The fields of an entry written by a sink, on a stream nobody reads."""
    published = await StreamSink(backend).send(StreamEvent("t", "r", run, payload="template"))
    ((_, fields),) = await raw.xrange(f"pulse:stream:{published.stream_id}", "-", "+")
    return dict(fields)
