"""Entries trimmed unread, as groups and readers tell them (the kit's rule-16 checks cover one
consumer; these cover a group of two and a loss found in the middle of a batch)."""

from __future__ import annotations

from typing import Any

import pytest
from nats.aio.msg import Msg
from streamsink.backend import Entry, Gap, RecordBatch, StartPosition

import streamsink_nats._reader as reader_module
from streamsink_nats import NatsBackend
from streamsink_nats._group_gaps import GroupGaps

pytestmark = pytest.mark.anyio


def _delivery(dseq: int, sseq: int, delivered: int = 1) -> Msg:
    """A JetStream delivery: its sequences are in its acknowledgement subject."""
    return Msg(
        _client=None,  # type: ignore[arg-type]
        subject="s",
        reply=f"$JS.ACK.S.C.{delivered}.{sseq}.{dseq}.1700000000000000000.0",
    )


def _gap(stream_id: str, after: str, before: str, count: int | None) -> Gap:
    return Gap(stream_id=stream_id, after=after, before=before, count=count)


def test_a_loss_opens_the_batch_it_is_found_in() -> None:
    gaps = GroupGaps("session/x")
    gaps.start(0, 0)
    batch = [_delivery(1, 1), _delivery(2, 2), _delivery(3, 7), _delivery(4, 8)]
    assert gaps.split(batch) == (None, 2)  # 3-6 never delivered: the batch ends before 7
    assert gaps.split(batch[2:]) == (_gap("session/x", "2", "7", 4), 2)


def test_deliveries_to_others_are_no_loss_and_leave_the_count_unknown() -> None:
    gaps = GroupGaps("session/x")
    gaps.start(0, 0)
    assert gaps.split([_delivery(1, 1)]) == (None, 1)
    # 2-4 went to another member (deliveries 2-4): no loss.
    assert gaps.split([_delivery(5, 5)]) == (None, 1)
    # Entries 6-12 in between and one delivery (6) to someone else: at least 6 were trimmed
    # unread, exactly how many nobody can tell.
    got, _ = gaps.split([_delivery(7, 13)])
    assert got == _gap("session/x", "5", "13", None)


def test_own_redeliveries_keep_the_count_exact() -> None:
    gaps = GroupGaps("session/x")
    gaps.start(0, 0)
    gaps.split([_delivery(1, 1), _delivery(2, 2)])
    # delivery 3 is entry 1 again (to this consumer), then entry 9: 3-8 were trimmed unread.
    batch = [_delivery(3, 1, delivered=2), _delivery(4, 9)]
    assert gaps.split(batch) == (None, 1)
    assert gaps.split(batch[1:]) == (_gap("session/x", "2", "9", 6), 1)


async def test_two_members_of_a_group_report_no_loss_when_there_is_none(nats_url: str) -> None:
    backend = await NatsBackend.connect(nats_url, max_msgs=0)
    try:
        stream = "session/two-members"
        await backend.append([Entry(stream, "n", b"%d" % i) for i in range(30)])
        a = await backend.open_group_consumer(stream, "g", "a", StartPosition.oldest())
        b = await backend.open_group_consumer(stream, "g", "b", StartPosition.oldest())
        seen: list[str] = []
        for consumer, count in [(a, 3), (b, 10), (a, 5), (b, 2), (a, 10)]:
            batch = await consumer.read_new(count, 0)
            assert not isinstance(batch, RecordBatch) or batch.gap is None, batch.gap
            seen += [record.entry_id for record in batch]  # held unsettled: no redelivery yet
        assert seen == [str(i) for i in range(1, 31)]
        await a.aclose()
        await b.aclose()
        await backend.destroy(stream)
    finally:
        await backend.aclose()


async def test_a_joining_member_reports_what_was_trimmed_since_the_group_last_read(
    nats_url: str,
) -> None:
    backend = await NatsBackend.connect(nats_url, max_msgs=10)
    try:
        stream = "session/joining"
        await backend.append([Entry(stream, "n", b"%d" % i) for i in range(5)])
        first = await backend.open_group_consumer(stream, "g", "a", StartPosition.oldest())
        assert [r.entry_id for r in await first.read_new(5, 0)] == ["1", "2", "3", "4", "5"]
        await first.aclose()
        await backend.append([Entry(stream, "n", b"%d" % i) for i in range(5, 40)])  # 6-30 go
        joined = await backend.open_group_consumer(stream, "g", "b", StartPosition.oldest())
        batch = await joined.read_new(100, 0)
        assert isinstance(batch, RecordBatch)
        assert batch.gap == _gap(stream, "5", "31", 25)
        assert [r.entry_id for r in batch] == [str(i) for i in range(31, 41)]
        await joined.aclose()
        await backend.destroy(stream)
    finally:
        await backend.aclose()


async def test_a_reader_batch_with_a_hole_ends_before_it(
    nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Messages missing from the middle of a delivered batch (trimmed meanwhile): the read ends
    before the hole and the next read starts again at the cursor, so nothing held is lost."""
    backend = await NatsBackend.connect(nats_url, max_msgs=0)
    try:
        stream = "session/hole"
        await backend.append([Entry(stream, "n", b"%d" % i) for i in range(10)])
        reader = await backend.open_reader(stream, StartPosition.oldest())
        real_pull = reader_module.pull

        async def pull_without_3_and_4(*args: Any) -> list[Msg]:
            msgs = await real_pull(*args)
            return [m for m in msgs if m.metadata.sequence.stream not in (3, 4)]

        monkeypatch.setattr(reader_module, "pull", pull_without_3_and_4)
        assert [r.entry_id for r in await reader.read(100, 0)] == ["1", "2"]
        monkeypatch.setattr(reader_module, "pull", real_pull)
        again = await reader.read(100, 0)
        assert [r.entry_id for r in again] == [str(i) for i in range(3, 11)]
        assert not isinstance(again, RecordBatch) or again.gap is None
        await reader.aclose()
        await backend.destroy(stream)
    finally:
        await backend.aclose()
