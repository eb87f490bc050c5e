"""A consumer group shared by streamsink consumers and Go pulse sinks (the emulation of
``tests/support/pulse_sink.py``, written from pulse's ``streaming/sink.go`` and ``rmap``).

pulse's stale-consumer sweep deletes every consumer of its group without a fresh keep-alive, and
Redis drops what a deleted consumer held. With ``pulse_keepalive`` (the default for pulse's key
prefix) streamsink consumers keep pulse's keep-alive up, so the sweep spares them:

- a mixed group (streamsink consumer processes and pulse sink processes, one stream, a producer
  sending): nothing lost, nothing dead-lettered, every event handled once;
- a streamsink consumer holding 20 unacknowledged entries when a pulse sink joins keeps them;
- with ``pulse_keepalive=false`` the sweep deletes the consumer, and the deletion is reported
  (``ConsumerDeletedError`` to ``on_error``), not silent.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis
import redis.asyncio as aioredis

import streamsink
from streamsink import (
    ConsumerDeletedError,
    Delivery,
    StartPosition,
    StreamEvent,
    StreamsinkError,
    SubscriberOptions,
)
from tests.support.leaks import redis_leftovers
from tests.support.pulse_sink import CHECK_IDLE_PERIOD, PulseSink
from tests.support.redis_server import RedisServer

from .support import (
    ConsumerLog,
    ProducerLog,
    Worker,
    account,
    record_figures,
    stop_all,
    sum_statistics,
    wait_until,
)

pytestmark = [pytest.mark.redis, pytest.mark.timeout(90)]

EVENTS = 800
GRACE = 1.0  # every sink of a group uses the same AckGracePeriod, as pulse requires
CLAIM = 0.1
HELD = 20
HOLD_GRACE = 4.0  # longer than the hold, so no idle claim takes the held entries meanwhile
SWEEPS = 3  # pulse idle checks (each a stale-consumer sweep) to sit through while holding


def test_mixed_group_loses_nothing(own_server: RedisServer, tmp_path: Path) -> None:
    session = f"faults-pulse-{uuid.uuid4().hex[:8]}"
    stream = f"session/{session}"
    key = f"pulse:stream:{stream}"
    group = "loom_mcp_subscriber"  # both sides' default
    url = f"{own_server.url}?maxlen=0"
    workers: list[Worker] = []
    client = redis.Redis.from_url(own_server.url, protocol=2)
    try:
        common = ("--stream", stream, "--group", group, "--grace", str(GRACE))
        ours = [
            Worker(
                tmp_path, f"streamsink{i}", "consumer", "--url", url, *common, "--claim", str(CLAIM)
            )
            for i in (1, 2)
        ]
        workers += ours
        wait_until(lambda: all(w.ready() for w in ours), 30, "streamsink consumers to start")
        # pulse sinks join a group whose streamsink consumers are already in it (the original
        # bug: their first sweep deleted them).
        theirs = [
            Worker(tmp_path, f"pulse{i}", "pulse", "--url", own_server.url, *common) for i in (1, 2)
        ]
        workers += theirs
        wait_until(lambda: all(w.ready() for w in theirs), 30, "pulse sinks to start")
        producer = Worker(
            tmp_path, "producer", "producer", "--url", url, "--session", session,
            "--producer", "1", "--count", str(EVENTS), "--rate", "250",
        )  # fmt: skip
        workers.append(producer)
        producer.wait(60)
        returned = set(ProducerLog.read(producer).returned.values())

        def handled() -> set[str]:
            return {p.entry_id for w in ours + theirs for p in ConsumerLog.read(w).processed}

        wait_until(lambda: returned <= handled(), 30, "every event")
        wait_until(lambda: not client.xpending(key, group)["pending"], 10, "acks")
        # A few more sweeps with everything idle: a sweep must spare idle consumers too.
        anyio.run(anyio.sleep, 2 * CHECK_IDLE_PERIOD + 0.1)
        for worker in ours + theirs:
            worker.stop()
        reports = [w.statistics() for w in ours]
        sweeps = [w.statistics() for w in theirs]
        left = {_text(c["name"]) for c in client.xinfo_consumers(key, group)}
    finally:
        client.close()
        stop_all(workers)
    leftovers = redis_leftovers(own_server.port)

    our_names = {ConsumerLog.read(w).consumer for w in ours}
    logs = [ConsumerLog.read(w) for w in ours + theirs]
    result = account([ProducerLog.read(producer)], logs)
    stats = sum_statistics(reports)
    deletions = [d for s in sweeps for d in s["deletions"]]
    by_pulse = sum(len(ConsumerLog.read(w).processed) for w in theirs)
    pulse_consumers = {c for s in sweeps for c in s["consumers"]}
    record_figures(
        "pulse_mixed_group",
        {
            **result.as_figures(),
            "dead_lettered": stats["dead_lettered"],
            "handled_by_streamsink": result.processed - by_pulse,
            "handled_by_pulse": by_pulse,
            "pulse_sweeps": sum(s["sweeps"] for s in sweeps),
            "streamsink_consumers_deleted_by_pulse": sum(
                d["consumer"] in our_names for d in deletions
            ),
            "deletions_reported": sum(r["errors"].get("ConsumerDeletedError", 0) for r in reports),
        },
    )

    assert not result.lost, f"lost: {result.lost[:20]}"
    assert not result.unknown
    assert stats["dead_lettered"] == 0
    assert [d for d in deletions if d["consumer"] in our_names] == []
    assert all(r["errors"].get("ConsumerDeletedError", 0) == 0 for r in reports)
    # Fast handlers, nothing idle for a grace period: no claim, so no redelivery and no
    # duplicate (a redelivery would be counted, and reported, as delivery count 2).
    assert result.redelivered_processed == 0 == stats["redelivered"]
    assert result.duplicates == 0, result.duplicates
    assert by_pulse > 0, "the pulse sinks handled nothing"
    assert result.processed > by_pulse, "the streamsink consumers handled nothing"
    # One lease for the group: one sink may win every idle check.
    assert sum(s["sweeps"] for s in sweeps) > 0
    # streamsink consumers closed holding nothing and removed themselves and their keep-alive
    # bookkeeping; what is left is pulse's: its consumers (its Close deletes neither them nor
    # their keep-alives) and, for 495 ms, its idle-check lease.
    assert left == pulse_consumers, (left, pulse_consumers)
    assert leftovers == [], leftovers


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _hold(
    url: str, stream: str, group: str, errors: list[StreamsinkError], *, check: Any
) -> dict[str, Any]:
    """Send HELD events, take them into a streamsink consumer without acking, run ``check``
    (which joins a pulse sink), then ack them; return what ``check`` returned."""
    session = stream.removeprefix("session/")
    async with streamsink.connect(url) as streams:
        for i in range(HELD):
            await streams.sink.send(StreamEvent("tool_start", "run", session, payload={"i": i}))
        options = SubscriberOptions(
            group=group,
            start=StartPosition.oldest(),
            buffer=HELD * 2,
            ack_grace_period=HOLD_GRACE,
            claim_interval=CLAIM,
            on_error=errors.append,
        )
        subscription = streams.new_subscriber(options).subscribe_manual(stream)
        held: list[Delivery] = []
        async with subscription as deliveries:
            async for delivery in deliveries:
                held.append(delivery)
                if len(held) == HELD:
                    break
            figures: dict[str, Any] = await check(subscription.consumer)
            for delivery in held:
                await delivery.ack()
            figures["statistics"] = subscription.statistics()
    return figures


@pytest.mark.anyio
async def test_held_entries_survive_a_pulse_sink_joining(own_server: RedisServer) -> None:
    stream = f"session/faults-held-{uuid.uuid4().hex[:8]}"
    key, group = f"pulse:stream:{stream}", "loom_mcp_subscriber"
    errors: list[StreamsinkError] = []
    async with aioredis.Redis.from_url(own_server.url, protocol=2) as client:

        async def pending(consumer: str) -> int:
            return len(await client.xpending_range(key, group, "-", "+", 1000, consumer))

        async def check(consumer: str) -> dict[str, Any]:
            before = await pending(consumer)
            async with PulseSink(own_server.url, stream, group, grace=HOLD_GRACE) as sink:
                with anyio.fail_after(10):
                    while sink.sweeps < SWEEPS:  # noqa: ASYNC110 (the sink's counter)
                        await anyio.sleep(0.05)
                during = await pending(consumer)
                deleted = [d for d in sink.deletions if d.consumer == consumer]
            return {"before": before, "during": during, "deleted": len(deleted)}

        figures = await _hold(own_server.url, stream, group, errors, check=check)
        after = (await client.xpending(key, group))["pending"]
    stats = figures["statistics"]
    record_figures(
        "pulse_mixed_group[held 20]",
        {
            "sent": HELD,
            "processed": stats.received,
            "pending_before_pulse_joined": figures["before"],
            "pending_after_pulse_sweeps": figures["during"],
            "pulse_sweeps_sat_through": SWEEPS,
            "deleted_by_pulse": figures["deleted"],
            "pending_after_acks": after,
            "dead_lettered": stats.dead_lettered,
            "lost": figures["before"] - figures["during"],
        },
    )
    assert figures["before"] == figures["during"] == HELD
    assert figures["deleted"] == 0
    assert after == 0
    assert stats.acknowledged == HELD
    assert errors == []


@pytest.mark.anyio
async def test_deletion_is_reported_without_keepalive(own_server: RedisServer) -> None:
    stream = f"session/faults-off-{uuid.uuid4().hex[:8]}"
    key, group = f"pulse:stream:{stream}", "loom_mcp_subscriber"
    errors: list[StreamsinkError] = []

    def reported() -> list[ConsumerDeletedError]:
        return [e for e in errors if isinstance(e, ConsumerDeletedError)]

    async with aioredis.Redis.from_url(own_server.url, protocol=2) as client:

        async def check(consumer: str) -> dict[str, Any]:
            before = len(await client.xpending_range(key, group, "-", "+", 1000, consumer))
            async with PulseSink(own_server.url, stream, group, grace=HOLD_GRACE) as sink:
                with anyio.fail_after(10):
                    while not reported():  # noqa: ASYNC110 (errors arrive via on_error)
                        await anyio.sleep(0.02)
                dropped = sum(d.dropped for d in sink.deletions if d.consumer == consumer)
            return {"before": before, "dropped": dropped, "consumer": consumer}

        url = f"{own_server.url}?pulse_keepalive=false"
        figures = await _hold(url, stream, group, errors, check=check)
    error = reported()[0]
    record_figures(
        "pulse_mixed_group[keepalive off]",
        {
            "sent": HELD,
            "processed": figures["statistics"].received,
            "pending_before_pulse_joined": figures["before"],
            "dropped_by_pulse_deletion": figures["dropped"],
            "deletions_reported": len(reported()),
            # Dropped by Redis with the deleted consumer, but reported: like trim_lag's skipped
            # entries, the totals count as lost only what was neither handled nor reported.
            "lost_reported": figures["dropped"],
            "lost_unreported": 0 if reported() else figures["dropped"],
            "lost": 0 if reported() else figures["dropped"],
        },
    )
    assert figures["before"] == HELD
    assert figures["dropped"] == HELD  # the original bug: pulse's sweep drops them all
    assert (error.stream_id, error.group, error.consumer) == (stream, group, figures["consumer"])
    assert "pulse_keepalive" in str(error)
