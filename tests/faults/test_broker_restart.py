"""Broker restart: real producer and consumer processes stream 20,000 events while the
redis-server (append-only file, ``appendfsync always``) is SIGKILLed and restarted twice.

What it shows (docs/reliability.md, guarantee 1):

- every ``send`` that returned is consumed at least once (lost = 0);
- the only duplicates are redeliveries: no event is processed twice on a first delivery, and the
  number of redelivered handler runs equals what the subscriptions' statistics report;
- nothing hot-loops: the retries each consumer reports are bounded by the outage length.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import redis

from tests.support.leaks import redis_leftovers
from tests.support.redis_server import RedisServer

from .support import (
    Accounting,
    ConsumerLog,
    ProducerLog,
    Worker,
    account,
    record_figures,
    start_consumers,
    start_producers,
    stop_all,
    sum_statistics,
    wait_until,
)

pytestmark = [pytest.mark.redis, pytest.mark.timeout(150)]

PRODUCERS = 2
CONSUMERS = 3
EVENTS_PER_PRODUCER = 10_000
RATE = 1000.0  # events per second per producer: the stream lasts about 10 s
KILL_AT = (2.5, 6.0)  # seconds after the producers start
OUTAGE = 1.5  # seconds the server stays dead each time
GRACE = 1.0  # ack_grace_period of the consumers
CLAIM = 0.1  # claim_interval of the consumers
# Retries one consumer may make per outage. The core's backoff starts at 50 ms and doubles up to
# 2 s, so an outage of T seconds costs each failing caller about log2(2 / 0.05) + T / 2 ~ 7
# attempts; a consumer has up to two callers (its reader and its acks) sharing one backoff.
# A hot loop would make thousands.
MAX_RETRIES_PER_OUTAGE = 20
# Failed sends one producer may see per outage: 4 sender tasks, each backing off from 50 ms to
# 0.5 s, make about 4 + (T - 0.75) / 0.5 attempts over an outage of T seconds.
MAX_FAILED_SENDS_PER_OUTAGE = 4 * 12


def _drained(client: redis.Redis, key: str, group: str) -> bool:
    """Every entry of the stream was delivered to the group, and none is pending."""
    info = next(g for g in client.xinfo_groups(key) if g["name"].decode() == group)
    last = client.xinfo_stream(key)["last-generated-id"]
    return bool(info["pending"] == 0 and info["last-delivered-id"] == last)


def test_broker_killed_twice(durable_server: RedisServer, tmp_path: Path) -> None:
    session = f"faults-restart-{uuid.uuid4().hex[:8]}"
    stream = f"session/{session}"
    key = f"pulse:stream:{stream}"
    group = "faults"
    url = f"{durable_server.url}?maxlen=0&socket_timeout=1&socket_connect_timeout=1"
    workers: list[Worker] = []
    try:
        consumer_args = ("--url", url, "--stream", stream, "--group", group)
        consumer_args += ("--grace", str(GRACE), "--claim", str(CLAIM), "--reconnect", "60")
        consumers = start_consumers(workers, tmp_path, CONSUMERS, *consumer_args)

        producer_args = ("--url", url, "--session", session, "--rate", str(RATE))
        producer_args += ("--count", str(EVENTS_PER_PRODUCER))
        producers = start_producers(workers, tmp_path, PRODUCERS, *producer_args)
        started = time.monotonic()
        outages: list[dict[str, float]] = []
        for at in KILL_AT:
            time.sleep(max(0.0, started + at - time.monotonic()))
            before = sum(len(ProducerLog.read(p).returned) for p in producers)
            killed = time.time()
            durable_server.kill()
            time.sleep(OUTAGE)
            durable_server.start()
            outages.append({"killed": killed, "answering": time.time(), "sent_before_kill": before})
        for producer in producers:
            producer.wait(90)
        produced_in = time.monotonic() - started

        client = redis.Redis(port=durable_server.port, protocol=2)
        try:
            drain = wait_until(lambda: _drained(client, key, group), 60, "the group to drain")
            for consumer in consumers:
                consumer.stop()
            leftover_consumers = client.xinfo_consumers(key, group)
        finally:
            client.close()
        reports = [consumer.statistics() for consumer in consumers]
        result = account(
            [ProducerLog.read(p) for p in producers], [ConsumerLog.read(c) for c in consumers]
        )
        server_leftovers = redis_leftovers(durable_server.port)
    finally:
        stop_all(workers)

    stats = sum_statistics(reports)
    outage_seconds = [o["answering"] - o["killed"] for o in outages]
    failed_sends = [len(ProducerLog.read(p).failed) for p in producers]
    record_figures(
        "broker_restart",
        {
            **result.as_figures(),
            "reported_redelivered": stats["redelivered"],
            "reported_received": stats["received"],
            "reported_acknowledged": stats["acknowledged"],
            "reported_expired": stats["expired"],
            "dead_lettered": stats["dead_lettered"],
            "retries_per_consumer": [r["statistics"]["retries"] for r in reports],
            "failed_sends_per_producer": failed_sends,
            "outages": len(outages),
            "outage_seconds": [round(s, 2) for s in outage_seconds],
            "sent_before_each_kill": [int(o["sent_before_kill"]) for o in outages],
            "seconds_to_produce": round(produced_in, 1),
            "seconds_to_drain_after_producers": round(drain, 2),
            "processes": {"producers": PRODUCERS, "consumers": CONSUMERS},
        },
    )
    _check(result, reports, stats, outages, failed_sends, leftover_consumers, server_leftovers)


def _check(
    result: Accounting,
    reports: list[dict[str, object]],
    stats: dict[str, int],
    outages: list[dict[str, float]],
    failed_sends: list[int],
    leftover_consumers: list[object],
    server_leftovers: list[str],
) -> None:
    # The kills really happened mid-stream.
    total = PRODUCERS * EVENTS_PER_PRODUCER
    assert all(0 < o["sent_before_kill"] < total for o in outages), outages

    # Nothing lost, nothing invented.
    assert result.sent == total
    assert not result.lost, f"{len(result.lost)} returned sends never consumed: {result.lost[:20]}"
    assert not result.unknown, result.unknown[:20]

    # The only duplicates are redeliveries, and the statistics count them exactly. Read-ahead
    # whose lease ran out during an outage longer than the grace period is received but not
    # handed out (statistics "expired"): the group redelivers it, to whichever consumer.
    assert not result.first_delivery_twice, result.first_delivery_twice[:20]
    assert result.duplicates <= result.redelivered_processed
    assert stats["received"] == result.processed + stats["expired"]
    redelivered_not_handled = stats["redelivered"] - result.redelivered_processed
    assert 0 <= redelivered_not_handled <= stats["expired"], stats
    assert stats["acknowledged"] == result.processed
    assert stats["dead_lettered"] == 0
    assert stats["decode_errors"] == 0

    # No subscription ended, every error reached on_error, nothing hot-looped.
    for report in reports:
        assert report["ended_by"] is None, report
        assert report["dropped_errors"] == 0, report
        retries = report["statistics"]["retries"]  # type: ignore[index]
        assert 1 <= retries <= MAX_RETRIES_PER_OUTAGE * len(outages), report
    for failed in failed_sends:
        assert failed <= MAX_FAILED_SENDS_PER_OUTAGE * len(outages), failed_sends

    # Consumers that stopped cleanly left nothing behind.
    assert leftover_consumers == []
    assert server_leftovers == []
