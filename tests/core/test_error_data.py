"""Errors carry their data: what ``on_error`` receives for poison, dead letters and dead letters
that could not be written, and what ``AckError`` says of the entries it was about."""

from __future__ import annotations

import anyio
import pytest

from streamsink import (
    AckError,
    BackendUnavailableError,
    DeadLetteredError,
    DeadLetterFailedError,
    DecodeError,
    StartPosition,
    StreamEvent,
    StreamSink,
    StreamsinkError,
    StreamSubscriber,
    SubscriberOptions,
)
from streamsink.backend import Entry
from streamsink.testing import FaultyBackend
from streamsink_memory import MemoryBackend, MemoryBroker

pytestmark = pytest.mark.anyio

STREAM = "session/errors"
POISON = b"\x00 not an envelope"


async def _stream_with_poison(backend: MemoryBackend) -> str:
    """One good event, one poison entry, one good event; the poison entry's id."""
    sink = StreamSink(backend)
    await sink.send(StreamEvent("t", "r", "errors", payload=0))
    (poison_id,) = await backend.append([Entry(STREAM, "t", POISON)])
    await sink.send(StreamEvent("t", "r", "errors", payload=1))
    return poison_id


def _options(reported: list[StreamsinkError], **overrides: object) -> SubscriberOptions:
    return SubscriberOptions(
        group="g", start=StartPosition.oldest(), on_error=reported.append, **overrides
    )


async def test_poison_reports_carry_the_entry_and_its_dead_letter() -> None:
    backend = MemoryBackend(MemoryBroker())
    poison_id = await _stream_with_poison(backend)
    reported: list[StreamsinkError] = []
    async with StreamSubscriber(backend, _options(reported)).subscribe(STREAM) as events:
        with anyio.fail_after(2):
            assert [event.payload async for event, _ in _pairs(events, 2)] == [0, 1]
    (decode,) = [e for e in reported if isinstance(e, DecodeError)]
    assert (decode.stream_id, decode.entry_id, decode.payload) == (STREAM, poison_id, POISON)
    assert isinstance(decode.__cause__, DecodeError)
    (lettered,) = [e for e in reported if isinstance(e, DeadLetteredError)]
    assert lettered.target == f"{STREAM}:dlq"
    letter = lettered.letter
    assert (letter.origin_stream, letter.entry_id, letter.group) == (STREAM, poison_id, "g")
    assert letter.payload == POISON
    assert letter.reason.startswith("undecodable: ")
    await backend.aclose()


async def test_a_manual_delivery_decode_error_names_its_entry() -> None:
    backend = MemoryBackend(MemoryBroker())
    poison_id = await _stream_with_poison(backend)
    reported: list[StreamsinkError] = []
    subscriber = StreamSubscriber(backend, _options(reported))
    async with subscriber.subscribe_manual(STREAM) as deliveries:
        with anyio.fail_after(2):
            got = [await deliveries.__anext__() for _ in range(3)]
        bad = got[1]
        assert bad.decode_error is not None
        assert (bad.decode_error.stream_id, bad.decode_error.entry_id) == (STREAM, poison_id)
        assert bad.decode_error.payload == POISON
        for delivery in got[:2]:
            await delivery.ack()
    with pytest.raises(AckError) as closed:
        await got[2].ack()  # the subscription is closed: refused, naming the entry
    assert closed.value.entry_ids == (got[2].entry_id,)
    await backend.aclose()


async def test_a_dead_letter_not_written_is_reported_with_the_letter() -> None:
    inner = MemoryBackend(MemoryBroker())
    poison_id = await _stream_with_poison(inner)
    backend = FaultyBackend(inner)
    backend.fail("append", times=None, stream_id=f"{STREAM}:dlq", error=BackendUnavailableError)
    reported: list[StreamsinkError] = []
    async with StreamSubscriber(backend, _options(reported)).subscribe(STREAM) as events:
        with anyio.fail_after(2):
            assert [event.payload async for event, _ in _pairs(events, 2)] == [0, 1]
    failed = [e for e in reported if isinstance(e, DeadLetterFailedError)]
    assert failed, reported
    assert failed[0].target == f"{STREAM}:dlq"
    assert failed[0].letter.entry_id == poison_id
    assert isinstance(failed[0].__cause__, BackendUnavailableError)
    assert not [e for e in reported if isinstance(e, DeadLetteredError)]
    await inner.aclose()


async def _pairs(events: object, count: int):  # type: ignore[no-untyped-def]
    """The first ``count`` events of an auto-mode subscription, as (event, index)."""
    index = 0
    async for event in events:  # type: ignore[attr-defined]
        yield event, index
        index += 1
        if index == count:
            return
