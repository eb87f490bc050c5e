"""Cluster failover: producer and consumer processes stream into one stream of a real Redis
Cluster (3 masters, 3 replicas, ``cluster-node-timeout`` 500 ms) while the master serving it is
SIGKILLed mid-stream; its replica takes over, and the killed node comes back as its replica.

Replication is asynchronous: an append the master acknowledged may not have reached the replica
when the master dies, and the failover then loses it. What it shows (docs/reliability.md,
"Redis Cluster failover"):

- with ``wait_replicas=1`` (``WAIT 1`` after every append), no send that *returned* is lost;
  sends that raised ``DurabilityError`` or ``BackendUnavailableError`` may or may not be;
- without it, the loss is measured and recorded, not asserted: a run may lose nothing;
- either way the consumer group recovers on the promoted master and its consumers get every
  entry that survived. Duplicates are redeliveries (delivery count > 1), except entries the
  killed master had handed out without its replica knowing (group state is replicated
  asynchronously too, and WAIT covers appends only): those may come again as first deliveries,
  and only entries written before the kill may.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from tests.support.redis_cluster import ClusterNode, RedisCluster

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

pytestmark = [pytest.mark.redis, pytest.mark.timeout(120)]

PREFIX = "pulse:stream:"
PRODUCERS = 2
CONSUMERS = 2
EVENTS_PER_PRODUCER = 3_000
RATE = 2_000.0  # events per second per producer, from 8 sender tasks each
CONCURRENCY = 8
KILL_AFTER = 0.35  # the master dies once this share of the sends returned: mid-burst
GRACE = 1.0  # ack_grace_period of the consumers
CLAIM = 0.1  # claim_interval of the consumers
WAIT_TIMEOUT = 0.5  # wait_timeout: how long WAIT may wait for the replica


def _stream_on(cluster: RedisCluster, master: ClusterNode) -> str:
    """A fresh stream id whose key the node ``master`` serves."""
    while True:
        stream_id = f"session/faults-failover-{uuid.uuid4().hex[:8]}"
        if cluster.master_for_key(PREFIX + stream_id) is master:
            return stream_id


def _stored(client: redis.Redis, key: str) -> dict[str, str]:
    """seq -> entry id of every entry in the stream, read straight from its master."""
    stored: dict[str, str] = {}
    entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(key)  # type: ignore[assignment]
    for raw_id, fields in entries:
        seq = orjson.loads(fields[b"p"])["payload"]["seq"]
        assert seq not in stored, f"{seq} stored twice"
        stored[seq] = raw_id.decode()
    return stored


def _drained(client: redis.Redis, key: str, group: str) -> bool:
    """Every entry of the stream was delivered to the group, and none is pending."""
    groups = [g for g in client.xinfo_groups(key) if g["name"].decode() == group]
    if not groups:
        return False
    last = client.xinfo_stream(key)["last-generated-id"]
    return bool(groups[0]["pending"] == 0 and groups[0]["last-delivered-id"] == last)


@pytest.mark.parametrize("wait_replicas", [1, 0], ids=["wait_replicas=1", "wait_replicas=0"])
def test_master_killed_and_failed_over(
    failover_cluster: RedisCluster, tmp_path: Path, wait_replicas: int
) -> None:
    cluster = failover_cluster
    victim = cluster.masters()[0]
    stream = _stream_on(cluster, victim)
    session = stream.removeprefix("session/")
    key = PREFIX + stream
    group = "faults"
    slots = cluster.slots_of(victim)
    url = cluster.url(
        f"maxlen=0&socket_timeout=1&socket_connect_timeout=1"
        f"&wait_replicas={wait_replicas}&wait_timeout={WAIT_TIMEOUT}"
    )
    workers: list[Worker] = []
    try:
        consumer_args: tuple[str, ...] = ("--url", url, "--stream", stream, "--group", group)
        consumer_args += ("--grace", str(GRACE), "--claim", str(CLAIM), "--reconnect", "60")
        consumers = start_consumers(workers, tmp_path, CONSUMERS, *consumer_args)

        producer_args: tuple[str, ...] = ("--url", url, "--session", session, "--rate", str(RATE))
        producer_args += ("--count", str(EVENTS_PER_PRODUCER), "--concurrency", str(CONCURRENCY))
        producers = start_producers(workers, tmp_path, PRODUCERS, *producer_args)
        started = time.monotonic()

        def returned() -> int:
            return sum(len(ProducerLog.read(p).returned) for p in producers)

        total = PRODUCERS * EVENTS_PER_PRODUCER
        wait_until(lambda: returned() >= KILL_AFTER * total, 60, "the first sends", every=0.005)
        sent_before_kill = returned()
        killed = time.monotonic()
        killed_at = time.time()
        cluster.kill(victim)
        promoted = cluster.wait_for_failover(victim, slots=slots)
        failed_over = time.monotonic()
        # The killed node rejoins as the promoted master's replica (dropping what it had that
        # the replica had not): until it is in sync, WAIT 1 cannot be met.
        cluster.restart(victim)
        cluster.wait_ok()
        replica_back = time.monotonic()
        for producer in producers:
            producer.wait(90)
        produced_in = time.monotonic() - started

        client = redis.Redis(port=promoted.port, protocol=2)
        try:
            drain = wait_until(lambda: _drained(client, key, group), 60, "the group to drain")
            for consumer in consumers:
                consumer.stop()
            stored = _stored(client, key)
            leftover_consumers = client.xinfo_consumers(key, group)
        finally:
            client.close()
        producer_logs = [ProducerLog.read(p) for p in producers]
        errors = sum((_errors(p) for p in producers), Counter[str]())
        consumer_logs = [ConsumerLog.read(c) for c in consumers]
        reports = [consumer.statistics() for consumer in consumers]
        result = account(producer_logs, consumer_logs)
    finally:
        stop_all(workers)

    stats = sum_statistics(reports)
    returned_sends = {seq: at for log in producer_logs for seq, at in log.returned.items()}
    lost_in_failover = sorted(seq for seq, at in returned_sends.items() if stored.get(seq) != at)
    consumed = {item.seq for log in consumer_logs for item in log.processed}
    never_consumed = sorted(set(stored) - consumed)
    replayed = _written_before(consumer_logs, result.first_delivery_twice, killed_at)
    record_figures(
        f"cluster_failover[wait_replicas={wait_replicas}]",
        {
            **result.as_figures(),
            "wait_replicas": wait_replicas,
            "stored_after_failover": len(stored),
            "lost_in_failover": len(lost_in_failover),
            "never_consumed_of_stored": len(never_consumed),
            "first_delivery_duplicates": len(result.first_delivery_twice),
            "consumed_then_lost_in_failover": len(consumed - set(stored)),
            "sent_before_kill": sent_before_kill,
            "failed_sends_per_producer": [len(log.failed) for log in producer_logs],
            "durability_errors": errors["DurabilityError"],
            "unavailable_errors": errors["BackendUnavailableError"],
            "seconds_to_failover": round(failed_over - killed, 2),
            "seconds_to_replica_back": round(replica_back - killed, 2),
            "seconds_to_produce": round(produced_in, 1),
            "seconds_to_drain_after_producers": round(drain, 2),
            "reported_redelivered": stats["redelivered"],
            "dead_lettered": stats["dead_lettered"],
            "retries_per_consumer": [r["statistics"]["retries"] for r in reports],
            "processes": {"producers": PRODUCERS, "consumers": CONSUMERS},
        },
    )
    assert 0 < sent_before_kill < PRODUCERS * EVENTS_PER_PRODUCER  # killed mid-stream
    if wait_replicas:
        # WAIT 1 returned for every send that returned: the promoted replica had it.
        assert not lost_in_failover, (
            f"{len(lost_in_failover)} returned sends lost with wait_replicas=1: "
            f"{lost_in_failover[:20]}"
        )
    _check_consumers(result, never_consumed, replayed, reports, stats, leftover_consumers)


def _written_before(
    consumers: list[ConsumerLog], seqs: list[str], killed_at: float
) -> dict[str, bool]:
    """For each event handled twice on a first delivery: whether its entry was written before
    the kill (its id's time), i.e. the killed master held it and may have served reads of it
    that the promoted replica never saw."""
    ids = {item.seq: item.entry_id for log in consumers for item in log.processed}
    return {seq: int(ids[seq].split("-")[0]) <= killed_at * 1000 for seq in seqs}


def _errors(producer: Worker) -> Counter[str]:
    """The producer's failed sends by error type (its ``done`` line)."""
    for line in producer.lines():
        if line.startswith("done "):
            return Counter(json.loads(line.split(maxsplit=3)[3]))
    raise AssertionError(f"{producer.name} did not finish\n{producer.tail()}")


def _check_consumers(
    result: Accounting,
    never_consumed: list[str],
    replayed: dict[str, bool],
    reports: list[dict[str, Any]],
    stats: Counter[str],
    leftover_consumers: Sequence[object],
) -> None:
    # The group recovered on the promoted master: every entry that survived was handled.
    assert not never_consumed, f"{len(never_consumed)} stored entries never handled"
    assert result.sent == PRODUCERS * EVENTS_PER_PRODUCER
    assert not result.unknown, result.unknown[:20]
    # Duplicates are redeliveries, except across the failover itself: group state reaches the
    # replica asynchronously (WAIT covers appends only), so entries the killed master had
    # handed out may be handed out again as first deliveries. Only entries it held may be.
    unexplained = sorted(seq for seq, before in replayed.items() if not before)
    assert not unexplained, f"delivered twice with delivery count 1: {unexplained[:20]}"
    assert result.duplicates <= result.redelivered_processed
    assert stats["dead_lettered"] == 0
    assert stats["decode_errors"] == 0
    for report in reports:
        assert report["ended_by"] is None, report
        assert report["dropped_errors"] == 0, report
    assert leftover_consumers == []
