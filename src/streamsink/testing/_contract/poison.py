"""Rule 11 of docs/contract.md: undecodable entries never end a subscription; max_deliveries dead-letters."""

from __future__ import annotations

from ..._deadletter import decode_dead_letter
from ..._exceptions import (
    DecodeError,
    StreamsinkError,
)
from ...backend import Entry
from .._harness import Harness
from ._registry import check

__all__: list[str] = []


@check("11", "consumer_groups", "fan_out")
async def undecodable_entries_do_not_stop_auto_mode(h: Harness) -> None:
    """In auto mode an undecodable entry is reported, dead-lettered and acked; consumption goes on."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    await backend.append([Entry(stream, "tool_start", b"\xff\xfe not json")])
    (good,) = await h.publish(backend, session, 1)
    errors: list[StreamsinkError] = []
    async with h.subscriber(backend, on_error=errors.append).subscribe(stream) as sub:
        (event,) = await h.take(sub, 1)
        assert event.entry_id == good.entry_id
        stats = sub.statistics()
    assert stats.decode_errors == 1 and stats.dead_lettered == 1, stats
    assert any(isinstance(e, DecodeError) for e in errors), errors
    (record,) = await h.read_all(backend, f"{stream}:dlq")
    letter = decode_dead_letter(record.payload or b"")
    assert letter.payload == b"\xff\xfe not json" and "undecodable" in letter.reason


@check("11", "consumer_groups")
async def undecodable_entries_arrive_in_manual_mode(h: Harness) -> None:
    """In manual mode an undecodable entry arrives as a Delivery with decode_error set."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    await backend.append([Entry(stream, "tool_start", b"[1,2]")])
    (good,) = await h.publish(backend, session, 1)
    async with h.subscriber(backend).subscribe_manual(stream) as sub:
        bad, fine = await h.take(sub, 2)
        assert bad.event is None and isinstance(bad.decode_error, DecodeError)
        assert bad.raw_payload == b"[1,2]" and bad.name == "tool_start"
        assert fine.entry_id == good.entry_id and fine.event is not None
        await bad.term("undecodable")
        await fine.ack()


@check("11", "consumer_groups", "redelivery", "fan_out")
async def max_deliveries_dead_letters(h: Harness) -> None:
    """After max_deliveries unacknowledged deliveries the entry goes to the dead-letter stream."""
    backend = await h.backend()
    session = h.session()
    stream = f"session/{session}"
    (sent,) = await h.publish(backend, session, 1)
    subscriber = h.subscriber(backend, max_deliveries=2)
    async with subscriber.subscribe_manual(stream) as sub:
        counts = []
        for delivery in await h.take(sub, 2):
            counts.append(delivery.delivery_count)
            await delivery.nack()
        assert counts == [1, 2], counts
        await h.nothing_within(sub, h.timing.grace * 3)
        assert sub.statistics().dead_lettered == 1, sub.statistics()
    (record,) = await h.read_all(backend, f"{stream}:dlq")
    letter = decode_dead_letter(record.payload or b"")
    assert letter.entry_id == sent.entry_id and letter.attempts == 2
    assert "max_deliveries=2" in letter.reason
