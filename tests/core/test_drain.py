"""The drain over every session (docs/drain.md) on the memory backend: sharding, order per
session, half-failed sends, relays, retention and gaps, auto/manual semantics of the merger."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import anyio
import attrs
import pytest

from streamsink import (
    BackendUnavailableError,
    ConfigurationError,
    DecodeError,
    DrainAppendError,
    DrainOptions,
    EntriesSkippedError,
    SinkOptions,
    StreamEvent,
    StreamSink,
    StreamsinkError,
    SubscriptionError,
    decode_drain_copy,
    event_topic,
)
from streamsink.backend import Entry, StartPosition
from streamsink.testing import FaultyBackend
from streamsink_memory import MemoryBackend, MemoryBroker, MemoryOptions
from tests.support.subscriptions import subscriber

pytestmark = pytest.mark.anyio
T = TypeVar("T")


async def take(items: AsyncIterator[T], count: int, within: float = 5.0) -> list[T]:
    got: list[T] = []
    with anyio.fail_after(within):
        async for item in items:
            got.append(item)
            if len(got) == count:
                break
    assert len(got) == count, f"ended after {len(got)} of {count}"
    return got


async def nothing_within(items: AsyncIterator[Any], seconds: float) -> None:
    with anyio.move_on_after(seconds):
        async for item in items:
            raise AssertionError(f"expected nothing, got {item!r}")


def event(session: str, index: int, **fields: Any) -> StreamEvent:
    return StreamEvent("tool_start", f"run-{index}", session, payload={"index": index}, **fields)


def origins(events: list[StreamEvent]) -> list[tuple[str | None, str | None]]:
    return [(e.stream_id, e.entry_id) for e in events]


# -- options --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shards": 0}, "DrainOptions.shards=0 is invalid: expected an integer from 1 to 1024"),
        ({"shards": 1025}, "DrainOptions.shards=1025 is invalid"),
        ({"shards": True}, "DrainOptions.shards=True is invalid"),
        ({"shards": "4"}, "DrainOptions.shards='4' is invalid"),
        ({"prefix": ""}, "DrainOptions.prefix='' is invalid: expected a stream id prefix"),
        ({"prefix": "session"}, "would be read as session streams"),
        ({"prefix": "x:dlq"}, "would be read as dead-letter streams"),
        ({"prefix": "a b"}, "DrainOptions.prefix='a b' is invalid: stream id 'a b/1023' contains"),
        (
            {"backend": "redis://:pw@x"},
            "DrainOptions.backend is invalid: got a value of type str (a URL? open it",
        ),
        ({"backend": 3}, "backend is invalid: got a value of type int; expected a Backend"),
    ],
)
def test_bad_drain_options_name_option_and_value(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        DrainOptions(**kwargs)
    assert message in str(raised.value)
    assert "pw" not in str(raised.value)  # a URL given by mistake is never shown


def test_sink_and_subscriber_refuse_what_is_not_drain_options() -> None:
    with pytest.raises(
        ConfigurationError, match=r"SinkOptions.drain=4 is invalid: expected a Drain"
    ):
        SinkOptions(drain=4)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"subscribe_drain\(drain=4\) is invalid"):
        subscriber(MemoryBackend()).subscribe_drain(4)  # type: ignore[arg-type]


def test_shards_are_a_stable_hash_of_the_stream_id() -> None:
    drain = DrainOptions(shards=16, prefix="agg")
    assert drain.stream_ids() == tuple(f"agg/{n}" for n in range(16))
    # crc32 of the UTF-8 stream id: the same in every process, language and version.
    assert drain.shard_of("session/abc") == f"agg/{zlib.crc32(b'session/abc') % 16}"
    assert zlib.crc32(b"session/abc") == 0x23C27964  # CRC-32 (ISO-HDLC), as Go's crc32.ChecksumIEEE
    assert drain.shard_of("session/abc") == "agg/4"
    spread = {drain.shard_of(f"session/{n}") for n in range(1000)}
    assert spread == set(drain.stream_ids())
    assert {DrainOptions().shard_of(f"session/{n}") for n in range(50)} == {"drain/0"}


# -- the sink side --------------------------------------------------------------------------------


async def test_each_session_keeps_its_order_in_its_one_shard() -> None:
    broker = MemoryBroker()
    backend = MemoryBackend(broker)
    drain = DrainOptions(shards=4)
    sink = StreamSink(backend, SinkOptions(drain=drain))
    sessions = [f"s{n}" for n in range(12)]

    async def publish(session: str) -> None:
        for index in range(10):
            await sink.send(event(session, index))

    async with anyio.create_task_group() as tg:  # concurrent sends share backend calls
        for session in sessions:
            tg.start_soon(publish, session)
    for session in sessions:
        stream = f"session/{session}"
        shard = drain.shard_of(stream)
        copies = [decode_drain_copy(r.payload or b"") for r in await read_all(backend, shard)]
        mine = [c.entry_id for c in copies if c.stream_id == stream]
        assert mine == broker.entry_ids(stream), stream
        for other in set(drain.stream_ids()) - {shard}:
            assert all(
                decode_drain_copy(r.payload or b"").stream_id != stream
                for r in await read_all(backend, other)
            )
    async with subscriber(backend, group="drain").subscribe_drain(drain) as events:
        got = await take(events, 120)
    for session in sessions:
        stream = f"session/{session}"
        assert [i for s, i in origins(got) if s == stream] == broker.entry_ids(stream)
        assert [e.payload["index"] for e in got if e.stream_id == stream] == list(range(10))


async def test_a_copy_holds_the_envelope_bytes_and_the_topic() -> None:
    backend = MemoryBackend()
    drain = DrainOptions()
    sink = StreamSink(backend, SinkOptions(drain=drain, topic=event_topic))
    sent = await sink.send(event("s", 1, topic="alerts"))
    (original,) = await read_all(backend, "session/s")
    (record,) = await read_all(backend, "drain/0")
    copy = decode_drain_copy(record.payload or b"")
    assert (copy.stream_id, copy.entry_id, copy.topic) == ("session/s", sent.entry_id, "alerts")
    assert copy.envelope == original.payload
    assert (record.name, record.topic) == ("tool_start", "alerts")
    async with subscriber(backend, group="d", topic="alerts").subscribe_drain(drain) as events:
        (got,) = await take(events, 1)
    assert (got.stream_id, got.entry_id, got.topic) == ("session/s", sent.entry_id, "alerts")
    assert got.source == original.payload  # relayed byte for byte


@pytest.mark.parametrize(
    "payload", [b"no header", b'{"drain":2}\n{}', b'{"drain":1}\n{}', b"[1]\n{}"]
)
def test_what_is_not_a_drain_copy_is_a_decode_error(payload: bytes) -> None:
    with pytest.raises(DecodeError, match="drain copy"):
        decode_drain_copy(payload)


async def test_a_failed_copy_raises_with_what_was_written_and_redrain_writes_it_once() -> None:
    broker = MemoryBroker()
    backend = FaultyBackend(MemoryBackend(broker))
    drain = DrainOptions(shards=2)
    sink = StreamSink(backend, SinkOptions(drain=drain))
    shard = drain.shard_of("session/s")
    backend.fail("append", stream_id=shard)
    with pytest.raises(DrainAppendError) as raised:
        await sink.send(event("s", 1))
    error = raised.value
    (entry_id,) = broker.entry_ids("session/s")  # the event is written, once
    assert error.written == (("session/s", entry_id),)
    assert broker.entry_ids(shard) == []
    assert isinstance(error.__cause__, BackendUnavailableError)
    assert f"session/s as {entry_id}" in str(error)
    assert "Do not send them again" in str(error)
    assert [c.stream_id for c in error.copies] == [shard]
    await sink.redrain(error)
    await sink.redrain(error)  # once per error
    (copy,) = [decode_drain_copy(r.payload or b"") for r in await read_all(backend, shard)]
    assert (copy.stream_id, copy.entry_id) == ("session/s", entry_id)
    async with subscriber(backend, group="d").subscribe_drain(drain) as events:
        (got,) = await take(events, 1)
        await nothing_within(events, 0.1)
    assert (got.stream_id, got.entry_id) == ("session/s", entry_id)


async def test_a_failed_redrain_raises_a_new_error_to_redrain() -> None:
    backend = FaultyBackend(MemoryBackend())
    drain = DrainOptions()
    sink = StreamSink(backend, SinkOptions(drain=drain))
    backend.fail("append", stream_id="drain/0", times=2)
    with pytest.raises(DrainAppendError) as first:
        await sink.send(event("s", 1))
    with pytest.raises(DrainAppendError) as second:
        await sink.redrain(first.value)
    assert not first.value.redrained
    await sink.redrain(second.value)
    assert len(await read_all(backend, "drain/0")) == 1
    with pytest.raises(ConfigurationError, match=r"without SinkOptions\.drain"):
        await StreamSink(backend).redrain(second.value)


async def test_a_failed_event_append_writes_no_copy() -> None:
    broker = MemoryBroker()
    backend = FaultyBackend(MemoryBackend(broker))
    sink = StreamSink(backend, SinkOptions(drain=DrainOptions()))
    backend.fail("append", stream_id="session/s")
    with pytest.raises(BackendUnavailableError):
        await sink.send(event("s", 1))
    assert broker.entry_ids("session/s") == []
    assert broker.entry_ids("drain/0") == []


async def test_send_many_half_failed_names_every_written_event() -> None:
    broker = MemoryBroker()
    backend = FaultyBackend(MemoryBackend(broker))
    sink = StreamSink(backend, SinkOptions(drain=DrainOptions(shards=3)))
    backend.fail("append", stream_id=DrainOptions(shards=3).shard_of("session/b"))
    with pytest.raises(DrainAppendError) as raised:
        await sink.send_many([event("a", 1), event("b", 2), event("c", 3)])
    # One call carries all copies: none is written, every written event is named.
    assert [s for s, _ in raised.value.written] == ["session/a", "session/b", "session/c"]
    assert all(broker.entry_ids(shard) == [] for shard in DrainOptions(shards=3).stream_ids())
    await sink.redrain(raised.value)
    assert sum(len(broker.entry_ids(s)) for s in DrainOptions(shards=3).stream_ids()) == 3


async def test_a_cancelled_send_still_writes_its_copy() -> None:
    broker = MemoryBroker()
    backend = FaultyBackend(MemoryBackend(broker))
    sink = StreamSink(backend, SinkOptions(drain=DrainOptions()))
    backend.delay("append", 0.2, stream_id="drain/0")
    with anyio.move_on_after(0.05) as scope:
        await sink.send(event("s", 1))
    assert not scope.cancelled_caught  # the send finished both appends before the cancellation
    assert len(broker.entry_ids("session/s")) == 1
    assert len(broker.entry_ids("drain/0")) == 1


async def test_relaying_a_drained_event_does_not_copy_it_again() -> None:
    broker = MemoryBroker()
    backend = MemoryBackend(broker)
    drain = DrainOptions()
    sink = StreamSink(backend, SinkOptions(drain=drain))
    await sink.send(event("s", 1))
    async with subscriber(backend, group="relay").subscribe_drain(drain) as events:
        (drained,) = await take(events, 1)
        relayed = await sink.send(drained)  # e.g. into the session stream again
        await sink.send_many([drained])
        changed = await sink.send(attrs.evolve(drained, payload={"index": 2}))  # a new event
        (got,) = await take(events, 1)
        await nothing_within(events, 0.1)
    assert len(broker.entry_ids("session/s")) == 4
    assert len(broker.entry_ids("drain/0")) == 2
    assert (got.stream_id, got.entry_id) == ("session/s", changed.entry_id)
    assert relayed.entry_id != drained.entry_id
    # A drained event relayed into another broker's drain is not copied either: it already went
    # through one. Received session events (not drained) are copied as usual.
    async with subscriber(backend, group="plain").subscribe("session/s") as plain:
        (received,) = await take(plain, 1)
    await sink.send(received)
    assert len(broker.entry_ids("drain/0")) == 3


async def test_events_sent_to_a_shard_itself_are_not_copied() -> None:
    broker = MemoryBroker()
    sink = StreamSink(
        MemoryBackend(broker), SinkOptions(drain=DrainOptions(), stream_id=lambda e: "drain/0")
    )
    await sink.send(event("s", 1))
    assert len(broker.entry_ids("drain/0")) == 1


# -- retention: a drain backend of its own --------------------------------------------------------


async def test_copies_go_through_the_drain_backend_with_its_own_maxlen_and_losses_are_gaps() -> (
    None
):
    broker = MemoryBroker()
    sessions = MemoryBackend(broker)  # unbounded
    drain_backend = MemoryBackend(broker, options=MemoryOptions(maxlen=5))
    drain = DrainOptions(backend=drain_backend)
    sink = StreamSink(sessions, SinkOptions(drain=drain))
    await sink.send(event("s", 0))
    async with subscriber(sessions, group="d").subscribe_drain(drain) as events:
        await take(events, 1)
    sent = [await sink.send(event("s", n)) for n in range(1, 13)]  # the drain is down
    assert len(broker.entry_ids("session/s")) == 13
    assert len(broker.entry_ids("drain/0")) == 5
    errors: list[StreamsinkError] = []
    async with subscriber(sessions, group="d", on_error=errors.append).subscribe_drain(
        drain
    ) as events:
        got = await take(events, 5)
        stats = events.statistics()
    assert origins(got) == [(p.stream_id, p.entry_id) for p in sent[-5:]]
    assert got[0].gap is not None
    assert got[0].gap.count == 7
    assert got[0].gap.stream_id == "drain/0"
    assert stats.skipped == 7
    assert stats.gaps == 1
    assert [e.gap.count for e in errors if isinstance(e, EntriesSkippedError)] == [7]


# -- the merged subscription ----------------------------------------------------------------------


async def test_auto_mode_acks_when_done_and_leaves_the_current_pending_on_an_exception() -> None:
    broker = MemoryBroker()
    backend = MemoryBackend(broker)
    drain = DrainOptions(shards=2)
    sink = StreamSink(backend, SinkOptions(drain=drain))
    sent = [await sink.send(event(f"s{n}", n)) for n in range(4)]

    class Stop(Exception):
        pass

    options = {"group": "d", "ack_grace_period": 0.2, "quiet": True}
    handled: list[int] = []

    async def handle_until_index_2() -> None:
        async with subscriber(backend, **options).subscribe_drain(drain) as events:
            async for drained in events:
                handled.append(drained.payload["index"])
                if drained.payload["index"] == 2:
                    raise Stop

    with pytest.raises(Stop):
        await handle_until_index_2()
    # What was handled before 2 is acknowledged; 2 and what was never handed out come back.
    left = sorted(set(range(len(sent))) - set(handled[:-1]))
    async with subscriber(backend, **options).subscribe_drain_manual(drain) as manual:
        again = await take(manual, len(left), within=5)
        for delivery in again:
            await delivery.ack()
        await nothing_within(manual, 0.5)
    assert sorted(d.event.payload["index"] for d in again) == left  # type: ignore[union-attr]
    assert 2 in left
    assert all(d.stream_id in drain.stream_ids() for d in again)
    for shard in drain.stream_ids():
        assert broker.pending(shard, "d") == []


async def test_leaving_normally_acks_the_current_event() -> None:
    broker = MemoryBroker()
    backend = MemoryBackend(broker)
    drain = DrainOptions()
    await StreamSink(backend, SinkOptions(drain=drain)).send(event("s", 1))
    async with subscriber(backend, group="d").subscribe_drain(drain) as events:
        async for _drained in events:
            break
    assert broker.pending("drain/0", "d") == []
    async with subscriber(backend, group="d").subscribe_drain(drain) as events:
        await nothing_within(events, 0.1)


async def test_waiting_deliveries_keep_their_lease_so_slow_consumers_never_share_one() -> None:
    # Each event takes a sixth of the grace period: a delivery waiting behind the other shards'
    # (4 shards) would be claimed by the other consumer, and handled twice, were it not renewed.
    # (Taking fewer than `shards` events per grace period is slower than docs/drain.md allows.)
    backend = MemoryBackend()
    drain = DrainOptions(shards=4)
    sink = StreamSink(backend, SinkOptions(drain=drain))
    await sink.send_many([event(f"s{n}", n) for n in range(16)])
    options = {"group": "d", "ack_grace_period": 0.3, "quiet": True}
    got: list[list[int]] = [[], []]
    done = anyio.Event()

    async def consume(index: int) -> None:
        async with subscriber(backend, **options).subscribe_drain(drain) as events:
            async for drained in events:
                got[index].append(drained.payload["index"])
                await anyio.sleep(0.05)
                if sum(map(len, got)) >= 16:
                    done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume, 0)
        tg.start_soon(consume, 1)
        with anyio.fail_after(10):
            await done.wait()
        await anyio.sleep(0.5)  # a duplicate, if any, would come now
        tg.cancel_scope.cancel()
    assert sorted(got[0] + got[1]) == list(range(16)), got


async def test_manual_poison_arrives_and_term_dead_letters_it_to_the_shard() -> None:
    broker = MemoryBroker()
    backend = MemoryBackend(broker)
    drain = DrainOptions()
    await backend.append([Entry("drain/0", "x", b"junk")])
    async with subscriber(backend, group="d").subscribe_drain_manual(drain) as manual:
        (bad,) = await take(manual, 1)
        assert bad.event is None
        assert isinstance(bad.decode_error, DecodeError)
        await bad.term("not ours")
    assert len(broker.entry_ids("drain/0:dlq")) == 1
    assert broker.pending("drain/0", "d") == []


async def test_a_failing_shard_ends_the_drain_with_subscription_error() -> None:
    backend = FaultyBackend(MemoryBackend())
    drain = DrainOptions(shards=3)
    made = subscriber(backend, group="d", reconnect_timeout=0.2, quiet=True)
    async with made.subscribe_drain(drain) as events:
        backend.fail("read_new", times=None, stream_id="drain/1")
        with pytest.raises(SubscriptionError), anyio.fail_after(5):
            async for _ in events:
                pass


async def test_closing_the_subscriber_ends_the_drain_and_the_drain_is_entered_once() -> None:
    backend = MemoryBackend()
    made = subscriber(backend, group="d")
    drain = made.subscribe_drain(DrainOptions(shards=2))
    with pytest.raises(SubscriptionError, match="inside `async with"):
        await drain.__anext__()
    async with drain as events:
        assert len(events.shards) == 2
        assert events.stream_ids == ("drain/0", "drain/1")
        with anyio.fail_after(1):
            async with anyio.create_task_group() as tg:
                tg.start_soon(made.aclose)
                async for _ in events:
                    pass
    with pytest.raises(SubscriptionError, match="only once"):
        async with drain:
            pass


async def test_a_custom_decoder_decodes_the_envelope_of_each_copy() -> None:
    backend = MemoryBackend()
    drain = DrainOptions()
    await StreamSink(backend, SinkOptions(drain=drain)).send(event("s", 1))
    seen: list[bytes] = []

    def decoder(data: bytes) -> StreamEvent:
        seen.append(data)
        from streamsink import decode_envelope

        return decode_envelope(data)

    async with subscriber(backend, group="d", decoder=decoder).subscribe_drain(drain) as events:
        (got,) = await take(events, 1)
    assert seen
    assert seen[0].startswith(b"{")
    assert got.stream_id == "session/s"


async def read_all(backend: Any, stream_id: str) -> list[Any]:
    reader = await backend.open_reader(stream_id, StartPosition.oldest())
    records: list[Any] = []
    try:
        while batch := await reader.read(1000, 0):
            records.extend(batch)
    finally:
        await reader.aclose()
    return records


def test_the_example_of_docs_drain_md_runs() -> None:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "drain.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(compile(code[1], "docs/drain.md", "exec"), namespace)
    anyio.run(namespace["main"])
