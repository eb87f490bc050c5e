"""A consumer stopped (SIGSTOP) for longer than the grace period: meanwhile the group gives what it
had read ahead to another consumer; when it continues (SIGCONT) it must not handle that
read-ahead again. Only the event its handler was in the middle of may be handled twice."""

from __future__ import annotations

import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import redis

from .support import (
    ConsumerLog,
    ProducerLog,
    Worker,
    account,
    record_figures,
    stop_all,
    wait_until,
)

pytestmark = [pytest.mark.redis, pytest.mark.timeout(90)]

EVENTS = 200
GRACE = 1.0
CLAIM = 0.1
STOPPED = 2.5  # seconds: well past the grace period and a claim interval


def test_a_stopped_consumer_does_not_handle_what_was_reclaimed(
    redis_url: str, tmp_path: Path
) -> None:
    session = f"faults-stop-{uuid.uuid4().hex[:8]}"
    stream = f"session/{session}"
    key = f"pulse:stream:{stream}"
    group = "stopped"
    url = f"{redis_url}{'&' if '?' in redis_url else '?'}maxlen=0"
    common = ("--url", url, "--stream", stream, "--group", group)
    timing = ("--grace", str(GRACE), "--claim", str(CLAIM))
    workers: list[Worker] = []
    client = redis.Redis.from_url(redis_url, protocol=2)
    try:
        # Slow (40 ms an event) with a large buffer: it always holds read-ahead, whose lease it
        # renews while it works.
        victim = Worker(
            tmp_path, "victim", "consumer", *common, *timing, "--buffer", "64", "--delay", "0.04"
        )
        workers.append(victim)
        wait_until(victim.ready, 30, "the victim to start")
        producer = Worker(
            tmp_path, "producer", "producer", "--url", url, "--session", session,
            "--producer", "1", "--count", str(EVENTS), "--rate", "2000",
        )  # fmt: skip
        workers.append(producer)
        producer.wait(60)
        wait_until(lambda: len(ConsumerLog.read(victim).processed) >= 5, 30, "the victim to work")
        other = Worker(tmp_path, "other", "consumer", *common, *timing)
        workers.append(other)
        wait_until(other.ready, 30, "the other consumer to start")

        victim.process.send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        victim_name = ConsumerLog.read(victim).consumer
        held = {
            row["message_id"].decode()
            for row in client.xpending_range(key, group, "-", "+", 10_000, victim_name)
        }
        before_stop = {p.entry_id for p in ConsumerLog.read(victim).processed}
        time.sleep(max(0.0, STOPPED - (time.monotonic() - stopped_at)))
        victim.process.send_signal(signal.SIGCONT)

        returned = set(ProducerLog.read(producer).returned.values())

        def everything_handled() -> bool:
            seen = {p.entry_id for w in (victim, other) for p in ConsumerLog.read(w).processed}
            return returned <= seen

        wait_until(everything_handled, 30, "every event to be handled")
        wait_until(lambda: not client.xpending(key, group)["pending"], 15, "acks")
        time.sleep(0.5)  # anything the victim would still hand out shows up now
        victim.stop()
        other.stop()
        reports = {w.name: w.statistics() for w in (victim, other)}
    finally:
        client.close()
        stop_all(workers)

    logs = [ConsumerLog.read(victim), ConsumerLog.read(other)]
    result = account([ProducerLog.read(producer)], logs)
    handled = Counter(p.entry_id for log in logs for p in log.processed)
    twice = sorted(entry_id for entry_id, times in handled.items() if times > 1)
    expired = reports["victim"]["statistics"]["expired"]
    record_figures(
        "stopped_consumer",
        {
            **result.as_figures(),
            "held_by_victim_when_stopped": len(held),
            "handled_by_victim_before_stop": len(before_stop),
            "stopped_seconds": STOPPED,
            "handled_twice": len(twice),
            "read_ahead_not_handed_out_after_resume": expired,
        },
    )
    assert len(held) >= 10, f"the victim held only {len(held)} entries when stopped"
    assert not result.lost, f"lost: {result.lost[:20]}"
    assert not result.unknown
    # At most the event the victim's handler was in the middle of is handled twice.
    assert len(twice) <= 1, (len(twice), len(held))
    assert expired >= len(held) - 2, reports["victim"]["statistics"]
