"""Shared fan-out reads on memory:// (asyncio and trio): the core's hub serves every fan-out
subscription of a backend through one multi-stream wait. The same scenarios run on a real
redis-server in tests/redis/test_shared_reads.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest

import streamsink
from streamsink import ConfigurationError, SubscriberOptions
from streamsink._consuming._gaps import Gaps
from streamsink._consuming._statistics import Counters
from streamsink._decoder import decode_entry
from streamsink._envelope import encode_envelope
from streamsink._sharing import hub_of
from streamsink.backend import Gap
from streamsink_memory import MemoryBackend
from tests.support import shared_reads as scenarios

pytestmark = pytest.mark.anyio

_NOW = datetime(2026, 12, 2, tzinfo=UTC)


@pytest.fixture
async def backend() -> AsyncIterator[MemoryBackend]:
    opened = await streamsink.open_backend(f"memory://shared-{uuid.uuid4().hex[:8]}?maxlen=0")
    assert isinstance(opened, MemoryBackend)
    yield opened
    await opened.aclose()


async def test_every_reader_gets_every_entry_once_in_order(backend: MemoryBackend) -> None:
    """500 readers over 50 streams: every entry once, in order, through one wait."""

    async def one_wait() -> None:
        # the one shared read waits on every stream, and nothing else waits
        waits = {id(w) for ws in backend.broker._waiters.values() for w in ws}
        assert len(waits) <= 1, f"{len(waits)} waits for 500 readers"

    await scenarios.every_reader_gets_every_entry(backend, while_joined=one_wait)


async def test_a_slow_reader_neither_stalls_others_nor_grows(backend: MemoryBackend) -> None:
    await scenarios.slow_reader_is_detached_and_catches_up(backend)


async def test_trimming_a_detached_reader_reports_the_gap() -> None:
    backend = await streamsink.open_backend(f"memory://shared-{uuid.uuid4().hex[:8]}?maxlen=20")
    async with backend:  # type: ignore[attr-defined]
        await scenarios.trimming_overtakes_a_detached_reader(backend)


async def test_joins_and_leaves_while_blocked_are_prompt(backend: MemoryBackend) -> None:
    await scenarios.joins_and_leaves_are_prompt_while_blocked(backend)


async def test_cancelling_the_leader(backend: MemoryBackend) -> None:
    await scenarios.cancelling_the_leader_hands_the_read_over(backend)


async def test_backend_close_ends_everything(backend: MemoryBackend) -> None:
    await scenarios.backend_close_ends_every_reader(backend)


async def test_opting_out_reads_on_its_own(backend: MemoryBackend) -> None:
    """``shared_reads=False`` opens a reader of its own: no hub, same events."""
    async with streamsink.connect(backend) as streams:
        subscriber = streams.new_subscriber(group=None, shared_reads=False)
        sent = await streams.sink.send(streamsink.StreamEvent("e", "r", "opt-out"))
        async with subscriber.subscribe(
            sent.stream_id, start=streamsink.StartPosition.oldest()
        ) as events:
            assert hub_of(backend) is None
            assert (await events.__anext__()).entry_id == sent.entry_id


def test_shared_reads_option_is_validated() -> None:
    with pytest.raises(ConfigurationError, match="shared_reads"):
        SubscriberOptions(shared_reads="yes")  # type: ignore[arg-type]


async def test_shared_readers_wait_longer_between_returns(backend: MemoryBackend) -> None:
    """A shared reader's read waits ``SHARED_MAX_BLOCK`` (it wakes for close, cancel, destroy
    and failures anyway); ``max_block`` still wins, and an unshared reader keeps 5 s."""
    from streamsink._sharing import SHARED_MAX_BLOCK

    async with streamsink.connect(backend) as streams:
        cases = {
            (True, None): SHARED_MAX_BLOCK,
            (True, 2.0): 2.0,
            (False, None): 5.0,
        }
        for (shared, max_block), expected in cases.items():
            subscriber = streams.new_subscriber(
                group=None, shared_reads=shared, max_block=max_block
            )
            async with subscriber.subscribe("session/blocks") as events:
                assert events._settings.max_block == expected, (shared, max_block)


async def test_readers_joining_at_once_after_one_id_share_one_resolve() -> None:
    """Many readers resuming one stream after one id at once (a mass reconnect) resolve it
    once; each still gets every entry after the id."""
    import anyio

    from streamsink import StartPosition, StreamEvent, StreamSink, StreamSubscriber
    from streamsink_memory import MemoryBroker

    resolves = 0

    class Counting(MemoryBackend):
        async def open_shared_reads(self) -> Any:
            shared = await super().open_shared_reads()
            resolve = shared.resolve

            async def counted(stream_id: str, start: StartPosition) -> Any:
                nonlocal resolves
                resolves += 1
                await anyio.sleep(0.01)  # a round trip: the others join meanwhile
                return await resolve(stream_id, start)

            shared.resolve = counted  # type: ignore[method-assign]
            return shared

    backend = Counting(MemoryBroker())
    sink = StreamSink(backend)
    sent = [await sink.send(StreamEvent("tool_start", "r", "s", f"k{i}")) for i in range(3)]
    subscriber = StreamSubscriber(backend, SubscriberOptions(group=None))
    got: list[list[str]] = []

    async def reader() -> None:
        start = StartPosition.after(sent[0].entry_id)
        async with subscriber.subscribe("session/s", start=start) as events:
            keys = []
            async for event in events:
                keys.append(event.event_key)
                if len(keys) == 2:
                    break
            got.append(keys)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(reader)
    assert got == [["k1", "k2"]] * 10
    assert resolves == 1
    await backend.aclose()


async def test_readers_of_one_stream_share_the_decoded_event(backend: MemoryBackend) -> None:
    """An entry read for several shared readers is decoded once: each gets the same (frozen)
    event, equal to what a reader of its own decodes."""
    async with streamsink.connect(backend) as streams:
        subscriber = streams.new_subscriber(group=None)
        alone = streams.new_subscriber(group=None, shared_reads=False)
        stream = "session/shared-decode"
        async with (
            subscriber.subscribe(stream) as a,
            subscriber.subscribe(stream) as b,
            alone.subscribe(stream) as c,
        ):
            await streams.sink.send(streamsink.StreamEvent("e", "r", "shared-decode", "k"))
            with anyio.fail_after(2):
                got = [await a.__anext__(), await b.__anext__(), await c.__anext__()]
    assert got[0] is got[1]
    assert got[0] == got[2]
    assert got[0] is not got[2]


def test_a_gap_is_marked_on_a_copy_of_a_shared_event() -> None:
    """The gap one subscription found must not show on the event other readers hand out."""
    event = decode_entry(
        encode_envelope(streamsink.StreamEvent("e", "r", "s", "k", {"a": 1}, timestamp=_NOW)),
        "1-0",
        "session/s",
    )
    reports: list[Exception] = []
    gaps = Gaps(Counters(), reports.append, manual=False)
    gaps.note(Gap(stream_id="session/s", after=None, before="1-0", count=3))
    entry_id, marked = gaps.attach(("1-0", event))
    assert entry_id == "1-0"
    assert marked.gap is not None
    assert marked.gap.count == 3
    assert event.gap is None, "the shared event was marked"
    assert marked.payload == event.payload
    assert len(reports) == 1
