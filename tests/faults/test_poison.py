"""Poison entries written with a raw client never stop consumption: each ends in the dead-letter
stream with its provenance, at once in auto mode and after ``max_deliveries`` in manual mode,
while every valid event around them is consumed (docs/reliability.md, guarantee 3)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import anyio
import pytest
import redis.asyncio as aioredis

import streamsink
from streamsink import (
    DeadLetter,
    DecodeError,
    Delivery,
    StartPosition,
    StreamEvent,
    StreamsinkError,
    decode_dead_letter,
)

from .support import record_figures

pytestmark = [pytest.mark.anyio, pytest.mark.redis, pytest.mark.timeout(60)]

MAX_DELIVERIES = 3
FIVE_MB = 5 * 1024 * 1024
VALID = b'{"type":"tool_start","run_id":"raw","timestamp":"2026-01-01T00:00:00Z","payload":%s}'

# name -> entry fields. Each is poison except where noted.
POISON: dict[str, dict[bytes, bytes]] = {
    "missing p": {b"n": b"tool_start"},
    "missing n and p": {b"t": b"topic-only"},
    "missing n, junk p": {b"p": b"\x00\x01 not json"},
    "binary junk": {b"n": b"tool_start", b"p": os.urandom(256)},
    "invalid UTF-8 JSON": {b"n": b"tool_start", b"p": b'{"type":"tool_start","run_id":"r"\xff}'},
    "5 MB junk": {b"n": b"tool_start", b"p": b"x" * FIVE_MB},
    "JSON array": {b"n": b"tool_start", b"p": b"[1,2,3]"},
    "JSON string": {b"n": b"tool_start", b"p": b'"tool_start"'},
    "object without type": {b"n": b"tool_start", b"p": b'{"run_id":"r"}'},
    "type not a string": {b"n": b"tool_start", b"p": b'{"type":7,"run_id":"r"}'},
    "bad timestamp": {b"n": b"tool_start", b"p": b'{"type":"x","timestamp":"yesterday"}'},
    "non-UTF-8 name, junk p": {b"n": b"\xff\xfe", b"p": b"{"},
}
# Not poison: the envelope in ``p`` carries the type, so a missing or odd ``n`` does not matter,
# a big valid event is just a big event, and text Go's decoder reads is read.
WELL_FORMED: dict[str, dict[bytes, bytes]] = {
    "missing n, valid p": {b"p": VALID % b'{"seq":"raw-1"}'},
    "5 MB valid envelope": {
        b"n": b"tool_start",
        b"p": VALID % (b'{"seq":"raw-2","blob":"' + b"y" * FIVE_MB + b'"}'),
    },
    # Go's decoder reads bytes that are not UTF-8 inside strings (as U+FFFD): so do we.
    "invalid UTF-8 in a string": {
        b"n": b"tool_start",
        b"p": VALID.replace(b'"raw"', b'"r\xff\xfe"') % b'{"seq":"raw-3"}',
    },
}


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, protocol=2)
    try:
        yield client
    finally:
        await client.aclose()


async def _write_stream(
    streams: streamsink.RuntimeStreams, raw: aioredis.Redis, session: str
) -> tuple[dict[str, str], list[str], dict[str, str]]:
    """Valid events through the sink, with every raw entry in between; returns the poison
    entry ids by name, the valid seqs, and the well-formed raw entry ids by name."""
    key = f"pulse:stream:session/{session}"
    poison_ids: dict[str, str] = {}
    well_formed_ids: dict[str, str] = {}
    seqs: list[str] = []
    raw_entries = [(name, fields, True) for name, fields in POISON.items()]
    raw_entries += [(name, fields, False) for name, fields in WELL_FORMED.items()]
    for index, (name, fields, poison) in enumerate(raw_entries):
        for j in range(3):
            seq = f"v{index}-{j}"
            await streams.sink.send(StreamEvent("tool_start", "r", session, payload={"seq": seq}))
            seqs.append(seq)
        entry_id = (await raw.xadd(key, fields)).decode()  # type: ignore[arg-type]
        (poison_ids if poison else well_formed_ids)[name] = entry_id
    for j in range(3):
        seq = f"last-{j}"
        await streams.sink.send(StreamEvent("tool_start", "r", session, payload={"seq": seq}))
        seqs.append(seq)
    return poison_ids, seqs, well_formed_ids


async def _dead_letters(streams: streamsink.RuntimeStreams, stream: str) -> list[DeadLetter]:
    reader = await streams.backend.open_reader(f"{stream}:dlq", StartPosition.oldest())
    try:
        records = await reader.read(1000, 0)
    finally:
        await reader.aclose()
    return [decode_dead_letter(record.payload or b"") for record in records]


async def test_poison_entries_are_dead_lettered(redis_url: str, raw: aioredis.Redis) -> None:
    session = f"faults-poison-{uuid.uuid4().hex[:8]}"
    stream = f"session/{session}"
    reported: list[StreamsinkError] = []
    async with streamsink.connect(f"{redis_url}?maxlen=0") as streams:
        poison_ids, seqs, well_formed_ids = await _write_stream(streams, raw, session)
        expected_seqs = {*seqs, "raw-1", "raw-2", "raw-3"}

        # Auto mode: poison is reported and dead-lettered at once; consumption goes on.
        auto = streams.new_subscriber(
            group="auto", start=StartPosition.oldest(), on_error=reported.append
        )
        auto_seen: list[str] = []
        with anyio.fail_after(20):
            async with auto.subscribe(stream) as events:
                async for event in events:
                    auto_seen.append(event.payload["seq"])
                    if set(auto_seen) >= expected_seqs:
                        break
                auto_stats = events.statistics()

        # Manual mode: poison arrives with decode_error; the handler nacks it; after
        # max_deliveries deliveries the core dead-letters it.
        manual = streams.new_subscriber(
            group="manual",
            start=StartPosition.oldest(),
            max_deliveries=MAX_DELIVERIES,
            ack_grace_period=1.0,
            claim_interval=0.1,
            on_error=reported.append,
        )
        manual_seen: list[str] = []
        poison_deliveries: dict[str, list[int]] = {}
        with anyio.fail_after(20):
            async with manual.subscribe_manual(stream) as deliveries:
                # Dead-lettering happens between deliveries, so a watcher ends the loop once
                # every valid event is in and every poison entry is dead-lettered.
                async def watch() -> None:
                    while True:  # polls Redis for the dead letters
                        letters = await _dead_letters(streams, stream)
                        if set(manual_seen) >= expected_seqs and _all_dead(
                            letters, "manual", poison_ids
                        ):
                            break
                        await anyio.sleep(0.05)
                    await deliveries.aclose()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(watch)
                    async for delivery in deliveries:
                        await _settle(delivery, manual_seen, poison_deliveries)
                manual_stats = deliveries.statistics()

        letters = await _dead_letters(streams, stream)
        pending = {
            group: (await raw.xpending(f"pulse:stream:{stream}", group))["pending"]
            for group in ("auto", "manual")
        }

    by_group = {
        group: {letter.entry_id: letter for letter in letters if letter.group == group}
        for group in ("auto", "manual")
    }
    record_figures(
        "poison",
        {
            "poison_entries": len(POISON),
            "well_formed_raw_entries": len(WELL_FORMED),
            "valid_events": len(seqs),
            "dead_lettered_auto": auto_stats.dead_lettered,
            "dead_lettered_manual": manual_stats.dead_lettered,
            "manual_deliveries_per_poison_entry": sorted(
                {len(counts) for counts in poison_deliveries.values()}
            ),
            "redelivered": auto_stats.redelivered + manual_stats.redelivered,
            "received_auto": len(auto_seen),
            "received_manual": len(manual_seen),
            "lost": len(expected_seqs - set(auto_seen)) + len(expected_seqs - set(manual_seen)),
        },
    )

    # Consumption never stopped: every valid event, before and after each poison entry.
    assert set(auto_seen) == expected_seqs
    assert set(manual_seen) == expected_seqs
    assert len(auto_seen) == len(expected_seqs)  # auto mode: no duplicates either
    # Auto mode: each poison entry dead-lettered once, at once (attempt 1), with provenance.
    assert auto_stats.dead_lettered == auto_stats.decode_errors == len(POISON)
    assert set(by_group["auto"]) == set(poison_ids.values())
    # Manual mode: each delivered MAX_DELIVERIES times, then dead-lettered by the core.
    assert manual_stats.dead_lettered == len(POISON)
    assert set(by_group["manual"]) == set(poison_ids.values())
    assert all(counts == [1, 2, 3] for counts in poison_deliveries.values()), poison_deliveries
    for name, entry_id in poison_ids.items():
        for group, attempts, reason in (
            ("auto", 1, "undecodable"),
            ("manual", MAX_DELIVERIES, "not acknowledged after 3 deliveries"),
        ):
            letter = by_group[group][entry_id]
            assert letter.origin_stream == stream, name
            assert letter.consumer, name
            assert letter.attempts == attempts, (name, group, letter.attempts)
            assert reason in letter.reason, (name, group, letter.reason)
            # The original bytes are kept exactly (text, or base64 when not UTF-8).
            assert letter.payload == POISON[name].get(b"p"), name
            assert letter.event_name == _name(POISON[name]), name
    # Every report reached on_error; nothing is left pending in either group.
    # (auto mode reports each undecodable entry; both modes report each dead letter)
    assert sum(isinstance(e, DecodeError) for e in reported) == len(POISON)
    assert sum("dead-lettered" in str(e) for e in reported) == 2 * len(POISON)
    assert pending == {"auto": 0, "manual": 0}
    assert set(well_formed_ids)  # delivered as ordinary events (raw-1 to raw-3 above)


def _name(fields: dict[bytes, bytes]) -> str | None:
    try:
        return fields[b"n"].decode()
    except (KeyError, UnicodeDecodeError):
        return None


async def _settle(
    delivery: Delivery, seen: list[str], poison_deliveries: dict[str, list[int]]
) -> None:
    if delivery.decode_error is not None:
        assert delivery.event is None
        poison_deliveries.setdefault(delivery.entry_id, []).append(delivery.delivery_count)
        await delivery.nack()
        return
    assert delivery.event is not None
    seen.append(delivery.event.payload["seq"])
    await delivery.ack()


def _all_dead(letters: list[DeadLetter], group: str, poison_ids: dict[str, str]) -> bool:
    return {letter.entry_id for letter in letters if letter.group == group} >= set(
        poison_ids.values()
    )
