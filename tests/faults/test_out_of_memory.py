"""Redis out of memory (``maxmemory`` with the default ``noeviction``): writes are refused, reads
and acknowledgements are not. A consumer must live through it: joining an existing group writes
nothing, a dead letter Redis refuses leaves its entry pending (nothing acknowledged) until a
redelivery writes it, sends fail with an error that names the cause, and nothing is lost."""

from __future__ import annotations

import uuid

import anyio
import pytest
import redis.asyncio as aioredis

import streamsink
from streamsink import BackendUnavailableError, StartPosition, StreamEvent, StreamsinkError
from tests.support.leaks import redis_leftovers
from tests.support.redis_server import RedisServer

from .support import record_figures

pytestmark = [pytest.mark.anyio, pytest.mark.redis, pytest.mark.timeout(60)]

GROUP = "oom"
VALID = 20


async def test_a_consumer_lives_through_redis_running_out_of_memory(
    own_server: RedisServer,
) -> None:
    session = f"oom-{uuid.uuid4().hex[:8]}"
    stream = f"session/{session}"
    key = f"pulse:stream:{stream}"
    raw = aioredis.from_url(own_server.url)
    errors: list[StreamsinkError] = []
    handled: list[int] = []
    try:
        async with streamsink.connect(f"{own_server.url}?socket_timeout=2") as streams:
            # The group exists, and entries wait in it, before memory runs out.
            await raw.execute_command("XGROUP", "CREATE", key, GROUP, "0", "MKSTREAM")
            sink = streams.sink
            for index in range(VALID // 2):
                await sink.send(StreamEvent("tool_start", "r", session, payload=index))
            poison = (
                await raw.execute_command("XADD", key, "*", "n", "tool_end", "p", "not an envelope")
            ).decode()
            for index in range(VALID // 2, VALID):
                await sink.send(StreamEvent("tool_start", "r", session, payload=index))
            await raw.config_set("maxmemory", 1)  # every write is refused from now on
            with pytest.raises(BackendUnavailableError, match="out of memory"):
                await sink.send(StreamEvent("tool_start", "r", session, payload=-1))

            subscriber = streams.new_subscriber(
                group=GROUP,
                start=StartPosition.oldest(),
                ack_grace_period=0.3,
                claim_interval=0.05,
                on_error=errors.append,
            )
            # Joining the existing group needs no write: it works while Redis refuses writes.
            async with subscriber.subscribe(stream) as events, anyio.create_task_group() as tg:

                async def consume() -> None:
                    async for event in events:
                        handled.append(event.payload)

                tg.start_soon(consume)
                with anyio.fail_after(10):
                    while len(handled) < VALID:  # noqa: ASYNC110
                        await anyio.sleep(0.02)
                await anyio.sleep(1.0)  # the poison entry is redelivered and refused again
                refused = events.statistics().dead_letter_failures
                pending = await raw.xpending_range(key, GROUP, "-", "+", 100)
                assert refused >= 2, events.statistics()
                # Nothing but the poison entry is pending: it is not acknowledged.
                assert [row["message_id"].decode() for row in pending] == [poison], pending
                assert await raw.exists(f"{key}:dlq") == 0

                await raw.config_set("maxmemory", 0)
                with anyio.fail_after(10):
                    while await raw.xpending_range(key, GROUP, "-", "+", 100):  # noqa: ASYNC110
                        await anyio.sleep(0.05)
                stats = events.statistics()
                tg.cancel_scope.cancel()
            letters = await raw.xrange(f"{key}:dlq")
    finally:
        await raw.config_set("maxmemory", 0)
        await raw.aclose()
    assert sorted(handled) == list(range(VALID))  # lost 0, duplicates 0
    assert len(letters) == 1
    assert stats.dead_lettered == 1
    assert any("out of memory" in str(error) for error in errors), errors
    assert redis_leftovers(own_server.port) == []
    record_figures(
        "out_of_memory",
        {
            "valid_events": VALID,
            "handled": len(handled),
            "duplicates": len(handled) - len(set(handled)),
            "lost": VALID - len(set(handled)),
            "dead_letter_writes_refused": refused,
            "dead_lettered_after_memory_was_freed": len(letters),
            "subscription_errors": 0,
        },
    )
