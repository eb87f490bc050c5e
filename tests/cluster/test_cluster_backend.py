"""The Redis backend on a real Redis Cluster: streams on every master, batches across slots,
cross-slot dead letters, WAIT durability, hash-tagged layouts."""

from __future__ import annotations

import uuid

import anyio
import pytest

from streamsink import (
    DeadLetter,
    DurabilityError,
    StartPosition,
    StreamEvent,
    StreamSink,
)
from streamsink.backend import Entry, TrimBound
from tests.support.redis_cluster import RedisCluster, command
from tests.support.subscriptions import subscriber, take

from .conftest import PREFIX, OpenBackend, slot_of, stream_on, streams_on_every_master

pytestmark = pytest.mark.anyio


async def test_one_batch_across_every_master_keeps_its_order(
    redis_cluster: RedisCluster, open_cluster: OpenBackend
) -> None:
    backend = await open_cluster()
    streams = streams_on_every_master(redis_cluster)
    entries = [Entry(streams[i % 3], "n", b"%d" % i) for i in range(9)]
    ids = await backend.append(entries)
    assert len(ids) == 9
    for index, stream_id in enumerate(streams):
        master = redis_cluster.master_for_key(PREFIX + stream_id)
        raw = command(master.port, "XRANGE", PREFIX + stream_id, "-", "+")
        assert isinstance(raw, list)
        stored = [row[0].decode() for row in raw]  # type: ignore[index]
        assert stored == ids[index::3]
        reader = await backend.open_reader(stream_id, StartPosition.oldest())
        records = await reader.read(10, 0.1)
        assert [record.payload for record in records] == [b"%d" % i for i in range(index, 9, 3)]
        await reader.aclose()


async def test_groups_and_readers_on_every_master(
    redis_cluster: RedisCluster, open_cluster: OpenBackend
) -> None:
    backend = await open_cluster()
    for stream_id in streams_on_every_master(redis_cluster):
        consumer = await backend.open_group_consumer(
            stream_id, "g", "c", StartPosition.oldest(), ack_grace_period=0.2
        )
        (entry_id,) = await backend.append([Entry(stream_id, "n", b"x")])
        with anyio.fail_after(5):
            records = await consumer.read_new(10, 1.0)
        assert [record.entry_id for record in records] == [entry_id]
        assert (await consumer.pending_summary()).count == 1
        await consumer.nack([entry_id])
        claimed = await consumer.claim_idle(0.0, 10)
        assert [record.entry_id for record in claimed] == [entry_id]
        await consumer.ack([entry_id])
        assert (await consumer.pending_summary()).count == 0
        info = await backend.stream_info(stream_id)
        assert info is not None
        assert info.last_entry_id == entry_id
        await consumer.aclose()
        await backend.destroy(stream_id)
        assert await backend.stream_info(stream_id) is None


async def test_dead_letters_go_to_a_stream_in_another_slot(
    redis_cluster: RedisCluster, open_cluster: OpenBackend
) -> None:
    """The dead-letter stream of a stream lies in another slot (on another master): dead
    lettering is an append there and an ack here, never one multi-key script."""
    backend = await open_cluster()
    while True:
        session = uuid.uuid4().hex[:10]
        stream = f"session/{session}"
        dead = f"{stream}:dlq"
        home = redis_cluster.master_for_key(PREFIX + stream)
        if redis_cluster.master_for_key(PREFIX + dead) is not home:
            break
    (poison,) = await backend.append([Entry(stream, "tool_end", b"junk")])
    await StreamSink(backend).send(StreamEvent("tool_start", "r", session))
    async with subscriber(backend, quiet=True, group="worker").subscribe(stream) as events:
        (event,) = await take(events, 1)
    assert event.type == "tool_start"
    async with subscriber(backend, quiet=True, group=None).subscribe_dead_letters(
        stream
    ) as letters:
        (letter,) = await take(letters, 1)
    assert isinstance(letter, DeadLetter)
    assert (letter.origin_stream, letter.entry_id, letter.payload) == (stream, poison, b"junk")
    assert slot_of(stream) != slot_of(dead)


async def test_wait_replicas_one_is_met(
    redis_cluster: RedisCluster, open_cluster: OpenBackend
) -> None:
    backend = await open_cluster(wait_replicas=1, wait_timeout=2)
    streams = streams_on_every_master(redis_cluster)
    ids = await backend.append([Entry(stream_id, "n", b"x") for stream_id in streams])
    for stream_id, entry_id in zip(streams, ids, strict=True):
        (replica,) = redis_cluster.replicas_of(redis_cluster.master_for_key(PREFIX + stream_id))
        # WAIT returned: the replica has it (READONLY lets a replica answer reads of its slots).
        raw = _read_on_replica(replica.port, PREFIX + stream_id)
        assert entry_id in raw


def _read_on_replica(port: int, key: str) -> list[str]:
    import socket

    from tests.support.redis_cluster import _encode, _Reader

    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(_encode(["READONLY"]) + _encode(["XRANGE", key, "-", "+"]))
        reader = _Reader(sock)
        reader.reply()
        rows = reader.reply()
    assert isinstance(rows, list)
    return [row[0].decode() for row in rows]  # type: ignore[index]


async def test_too_few_replicas_raise_durability_error(
    redis_cluster: RedisCluster, open_cluster: OpenBackend
) -> None:
    """Each master has one replica: asking for two fails after wait_timeout, naming how many
    acknowledged, and the entry is written all the same."""
    backend = await open_cluster(wait_replicas=2, wait_timeout=0.05)
    stream_id = stream_on(redis_cluster, redis_cluster.masters()[0].port)
    with pytest.raises(DurabilityError, match=r"1 of 2 replicas acknowledged") as info:
        await backend.append([Entry(stream_id, "n", b"x")])
    assert (info.value.acked, info.value.wanted) == (1, 2)
    (entry_id,) = info.value.entry_ids
    reader = await backend.open_reader(stream_id, StartPosition.oldest())
    assert [record.entry_id for record in await reader.read(10, 0)] == [entry_id]


async def test_hash_tags_keep_streams_in_one_slot(
    redis_cluster: RedisCluster, open_cluster: OpenBackend
) -> None:
    """Stream ids sharing a ``{hash tag}`` share a slot (and a master), whatever the prefix;
    a key prefix with a tag puts every stream of a backend in one slot."""
    tag = uuid.uuid4().hex[:8]
    streams = [f"{{session-{tag}}}/events", f"{{session-{tag}}}/events:dlq"]
    assert slot_of(streams[0]) == slot_of(streams[1])
    backend = await open_cluster()
    await backend.append([Entry(stream_id, "n", b"x") for stream_id in streams])
    owner = redis_cluster.master_for_key(PREFIX + streams[0])
    assert command(owner.port, "EXISTS", PREFIX + streams[0], PREFIX + streams[1]) == 2
    tagged = await open_cluster(key_prefix=f"{{app-{tag}}}:")
    keys = [tagged.key(f"s/{i}") for i in range(5)]
    assert len({slot_of_key(key) for key in keys}) == 1


def slot_of_key(key: str) -> int:
    from tests.support.redis_cluster import key_slot

    return key_slot(key)


async def test_groups_heal_after_every_master_is_flushed(
    redis_cluster: RedisCluster, open_cluster: OpenBackend
) -> None:
    """FLUSHALL on every master (the cluster's data lost) under group subscriptions on streams
    of every master: each group is re-created on its master and events sent afterwards arrive."""
    backend = await open_cluster(socket_timeout=1)
    streams = streams_on_every_master(redis_cluster, stem="session")
    sink = StreamSink(backend)
    sessions = [stream_id.split("/", 1)[1] for stream_id in streams]
    made = subscriber(backend, quiet=True, group="heal", claim_interval=0.05)
    async with (
        made.subscribe(streams[0]) as first,
        made.subscribe(streams[1]) as second,
        made.subscribe(streams[2]) as third,
    ):
        subscriptions = [first, second, third]
        for session in sessions:
            await sink.send(StreamEvent("tool_start", "before", session))
        for subscription in subscriptions:
            (event,) = await take(subscription, 1)
            assert event.run_id == "before"
        redis_cluster.flushall()
        for session in sessions:
            await sink.send(StreamEvent("tool_start", "after", session))
        for subscription in subscriptions:
            (event,) = await take(subscription, 1, within=10)
            assert event.run_id == "after"
        assert sum(s.statistics().groups_recreated for s in subscriptions) >= 1


async def test_operator_commands_reach_every_master(
    redis_cluster: RedisCluster, open_cluster: OpenBackend
) -> None:
    """Listing scans every master; per-stream commands go to each stream's master."""
    tag = uuid.uuid4().hex[:8]
    backend = await open_cluster(key_prefix=f"ops-{tag}:")
    streams = []
    for master in redis_cluster.masters():
        while True:
            stream_id = f"s/{uuid.uuid4().hex[:8]}"
            if redis_cluster.master_for_key(backend.key(stream_id)) is master:
                streams.append(stream_id)
                break
    for stream_id in streams:
        await backend.append([Entry(stream_id, "n", b"%d" % i) for i in range(3)])
        consumer = await backend.open_group_consumer(stream_id, "g", "c", StartPosition.oldest())
        await consumer.read_new(10, 0)
        await consumer.aclose()
    assert await backend.list_streams() == sorted(streams)
    for stream_id in streams:
        groups = await backend.list_groups(stream_id)
        assert groups is not None
        assert [(group.name, group.pending) for group in groups] == [("g", 3)]
        pending = await backend.list_pending(stream_id, "g")
        assert pending is not None
        assert len(pending) == 3
        assert await backend.trim_stream(stream_id, TrimBound.maxlen(1)) == 2
        assert not await backend.delete_idle_consumer(stream_id, "g", "c", min_idle=0)
