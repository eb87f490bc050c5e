"""Reading dead letters back: ``subscribe_dead_letters`` yields ``DeadLetter`` objects."""

from __future__ import annotations

import anyio
import pytest

from streamsink import (
    ConfigurationError,
    DeadLetter,
    StreamEvent,
    StreamSink,
)
from streamsink.backend import Entry
from streamsink_memory import MemoryBackend, MemoryBroker
from tests.support.subscriptions import subscriber

pytestmark = pytest.mark.anyio

STREAM = "session/s"


async def _dead_letter_two(backend: MemoryBackend) -> list[str]:
    """Two poison entries of STREAM, dead-lettered by an auto-mode group; their ids."""
    poison = await backend.append(
        [Entry(STREAM, "tool_end", b"junk"), Entry(STREAM, "tool_end", b"\xff\xfe")]
    )
    await StreamSink(backend).send(StreamEvent("tool_start", "r", "s"))
    async with subscriber(backend, quiet=True, group="worker").subscribe(STREAM) as events:
        with anyio.fail_after(5):
            await events.__anext__()
    return poison


@pytest.mark.parametrize("group", ["letters", None])
async def test_dead_letters_come_back_as_dead_letter_objects(group: str | None) -> None:
    broker = MemoryBroker()
    backend = MemoryBackend(broker)
    poison = await _dead_letter_two(backend)
    letter_ids = broker.entry_ids(f"{STREAM}:dlq")
    await backend.append([Entry(f"{STREAM}:dlq", "dead_letter", b"not a letter")])
    got: list[DeadLetter] = []
    made = subscriber(backend, quiet=True, group=group)
    async with made.subscribe_dead_letters(STREAM) as letters:
        with anyio.fail_after(5):
            async for letter in letters:
                got.append(letter)
                if len(got) == 2:
                    break
        with anyio.move_on_after(0.2):
            extra = await letters.__anext__()
            raise AssertionError(f"not a letter, yet delivered: {extra}")
        stats = letters.statistics()
    assert [(letter.origin_stream, letter.entry_id) for letter in got] == [
        (STREAM, poison[0]),
        (STREAM, poison[1]),
    ]
    assert [letter.letter_id for letter in got] == letter_ids
    assert [letter.payload for letter in got] == [b"junk", b"\xff\xfe"]
    assert {(letter.group, letter.attempts) for letter in got} == {("worker", 1)}
    assert all(letter.consumer and "undecodable" in letter.reason for letter in got)
    assert stats.decode_errors == 1  # the entry that is not a letter, skipped
    assert f"{STREAM}:dlq:dlq" not in broker.stream_ids()


async def test_dead_letters_need_a_dead_letter_stream() -> None:
    made = subscriber(MemoryBackend(MemoryBroker()), quiet=True, dead_letter_stream=None)
    with pytest.raises(ConfigurationError, match="dead_letter_stream=None"):
        made.subscribe_dead_letters(STREAM)


async def test_a_custom_dead_letter_stream_is_read() -> None:
    broker = MemoryBroker()
    backend = MemoryBackend(broker)
    naming = {"dead_letter_stream": lambda stream_id: f"dead/{stream_id}"}
    await backend.append([Entry(STREAM, "tool_end", b"junk")])
    await StreamSink(backend).send(StreamEvent("tool_start", "r", "s"))
    async with subscriber(backend, quiet=True, group="worker", **naming).subscribe(
        STREAM
    ) as events:
        with anyio.fail_after(5):
            await events.__anext__()
    async with subscriber(backend, quiet=True, group=None, **naming).subscribe_dead_letters(
        STREAM
    ) as letters:
        with anyio.fail_after(5):
            letter = await letters.__anext__()
    assert (letter.origin_stream, letter.payload) == (STREAM, b"junk")
    assert letter.letter_id == broker.entry_ids(f"dead/{STREAM}")[0]
