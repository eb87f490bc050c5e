"""Consumers that fall behind a stream's ``maxlen``: trimming deletes entries they have not read,
which no transport can deliver any more, but the loss must not be silent. A slow group consumer
and a slow fan-out reader, each in its own process, behind a fast producer: every event sent is
either handled or counted in a reported gap, exactly."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from .support import ConsumerLog, ProducerLog, Worker, record_figures, stop_all, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.timeout(90)]

EVENTS = 20_000
MAXLEN = 1000


@pytest.mark.parametrize("group", ["lagging", "-"], ids=["group", "fan-out reader"])
def test_entries_trimmed_unread_are_reported(redis_url: str, tmp_path: Path, group: str) -> None:
    session = f"faults-trim-{uuid.uuid4().hex[:8]}"
    stream = f"session/{session}"
    url = f"{redis_url}{'&' if '?' in redis_url else '?'}maxlen={MAXLEN}"
    workers: list[Worker] = []
    try:
        consumer = Worker(
            tmp_path, "consumer", "consumer", "--url", url, "--stream", stream,
            "--group", group, "--buffer", "64", "--delay", "0.001", "--grace", "20",
        )  # fmt: skip
        workers.append(consumer)
        wait_until(consumer.ready, 30, "the consumer to start")
        producer = Worker(
            tmp_path, "producer", "producer", "--url", url, "--session", session,
            "--producer", "1", "--count", str(EVENTS), "--rate", "8000", "--concurrency", "8",
        )  # fmt: skip
        workers.append(producer)
        producer.wait(60)
        sent = ProducerLog.read(producer)

        def caught_up() -> bool:
            handled = {p.entry_id for p in ConsumerLog.read(consumer).processed}
            return max(sent.returned.values(), key=_id_key) in handled

        wait_until(caught_up, 30, "the consumer to reach the last event")
        consumer.stop()
        report = consumer.statistics()
    finally:
        stop_all(workers)
    handled = ConsumerLog.read(consumer).processed
    unique = {p.entry_id for p in handled}
    stats = report["statistics"]
    record_figures(
        f"trim_lag[{'group' if group != '-' else 'fan-out reader'}]",
        {
            "sent": len(sent.returned),
            "maxlen": MAXLEN,
            "handled": len(unique),
            "skipped_reported": stats["skipped"],
            "gaps_reported": stats["gaps"],
            "unaccounted": len(sent.returned) - len(unique) - stats["skipped"],
            "duplicates": len(handled) - len(unique),
        },
    )
    assert unique <= set(sent.returned.values())
    assert stats["skipped"] > 0, "the consumer kept up: nothing was trimmed unread"
    assert len(unique) + stats["skipped"] == len(sent.returned), stats
    assert len(handled) == len(unique)


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)
