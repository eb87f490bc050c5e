"""Consumer crash: a consumer process is SIGKILLed mid-batch; the events it held (delivered to
it, not acknowledged) reach the surviving consumer processes within ``ack_grace_period`` plus
one claim interval, with delivery count 2, and nothing is lost (docs/reliability.md,
guarantee 2)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import redis

from tests.support.pulse_sink import forget_consumer

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

EVENTS = 600
GRACE = 1.0
CLAIM = 0.1
# Allowance on top of grace + claim interval for what a loaded 2-core machine adds: the survivor
# noticing the claim result, decoding, and writing its record.
SCHEDULING = 0.4


def test_consumer_killed_mid_batch(redis_url: str, tmp_path: Path) -> None:
    session = f"faults-crash-{uuid.uuid4().hex[:8]}"
    stream = f"session/{session}"
    key = f"pulse:stream:{stream}"
    group = "crash"
    url = f"{redis_url}{'&' if '?' in redis_url else '?'}maxlen=0"
    common = ("--url", url, "--stream", stream, "--group", group)
    timing = ("--grace", str(GRACE), "--claim", str(CLAIM))
    workers: list[Worker] = []
    client = redis.Redis.from_url(redis_url, protocol=2)
    try:
        # The victim is slow (30 ms per event, buffer 8) so it always holds a batch, yet no
        # event waits in it longer than the grace period (at most ~16 x 30 ms) while it lives.
        victim = Worker(
            tmp_path, "victim", "consumer", *common, *timing, "--buffer", "8", "--delay", "0.03"
        )
        survivors = [Worker(tmp_path, f"survivor{i}", "consumer", *common, *timing) for i in (1, 2)]
        workers += [victim, *survivors]
        wait_until(lambda: all(w.ready() for w in workers), 30, "consumers to start")
        producer = Worker(
            tmp_path, "producer", "producer", "--url", url, "--session", session,
            "--producer", "1", "--count", str(EVENTS), "--rate", "300",
        )  # fmt: skip
        workers.append(producer)

        # Kill the victim in the middle of a batch: it has finished some events and holds more.
        wait_until(lambda: len(ConsumerLog.read(victim).processed) >= 10, 30, "the victim to work")
        victim_name = ConsumerLog.read(victim).consumer
        victim.kill()
        killed = time.time()
        held = {
            row["message_id"].decode(): row["times_delivered"]
            for row in client.xpending_range(key, group, "-", "+", 10_000, victim_name)
        }
        done_by_victim = {p.entry_id for p in ConsumerLog.read(victim).processed}

        producer.wait(60)

        def survivors_have(ids: set[str]) -> bool:
            return ids <= {p.entry_id for s in survivors for p in ConsumerLog.read(s).processed}

        returned = set(ProducerLog.read(producer).returned.values())
        wait_until(lambda: survivors_have(set(held)), GRACE + CLAIM + 10, "the held events")
        wait_until(lambda: survivors_have(returned - done_by_victim), 30, "every event")
        wait_until(lambda: not client.xpending(key, group)["pending"], 10, "acks")
        for survivor in survivors:
            survivor.stop()
        reports = [s.statistics() for s in survivors]
        left = {c["name"].decode(): c["pending"] for c in client.xinfo_consumers(key, group)}
        # The dead consumer stays in the group (holding nothing) until someone deletes it:
        # remove it, as an operator would, so the session's leak check can hold everyone else
        # to "no consumer of a dead process".
        client.xgroup_delconsumer(key, group, victim_name)
        forget_consumer(client, stream, group, victim_name)  # and its pulse keep-alive entries
    finally:
        client.close()
        stop_all(workers)

    survivor_logs = [ConsumerLog.read(s) for s in survivors]
    result = account([ProducerLog.read(producer)], [ConsumerLog.read(victim), *survivor_logs])
    redelivered = {
        p.entry_id: p for log in survivor_logs for p in log.processed if p.entry_id in held
    }
    latency = max((p.at - killed for p in redelivered.values()), default=0.0)
    stats = sum_statistics(reports)
    record_figures(
        "consumer_crash",
        {
            **result.as_figures(),
            "held_by_victim_at_kill": len(held),
            "finished_by_victim": len(done_by_victim),
            "reached_survivors_within_seconds": round(latency, 3),
            "bound_seconds": GRACE + CLAIM,
            "reported_redelivered": stats["redelivered"],
        },
    )

    assert len(held) >= 2, "the victim held no batch when it was killed"
    assert all(count == 1 for count in held.values()), held
    assert not result.lost, f"lost: {result.lost[:20]}"
    assert not result.unknown
    assert not result.first_delivery_twice
    # Every held event went to a survivor exactly once more, as its second delivery.
    assert {p.delivery_count for p in redelivered.values()} == {2}
    assert result.redelivered_processed == len(held) == stats["redelivered"]
    assert latency <= GRACE + CLAIM + SCHEDULING, (latency, GRACE + CLAIM)
    # The only duplicates are events the victim finished but had not acknowledged yet.
    assert result.duplicates == len(set(held) & done_by_victim)
    # Survivors stopped cleanly and deleted themselves; only the dead victim was left.
    assert left == {victim_name: 0}
