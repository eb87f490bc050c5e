"""Slots that move under an open backend: a resharding (MOVED), a manual failover (``CLUSTER
FAILOVER`` on a replica) and a killed master. Calls in flight fail as retryable
(BackendUnavailableError); the core's backoff retries them on the new master, as after a
server restart."""

from __future__ import annotations

import uuid

import anyio
import pytest

from streamsink import (
    BackendUnavailableError,
    DurabilityError,
    PublishError,
    StartPosition,
    StreamEvent,
    StreamSink,
    StreamsinkError,
    StreamSubscriber,
    SubscriberOptions,
)
from streamsink.backend import Entry
from tests.support.redis_cluster import RedisCluster

from .conftest import PREFIX, OpenBackend, slot_of, stream_on

pytestmark = pytest.mark.anyio

FAST = {"socket_timeout": 1, "socket_connect_timeout": 0.5}


async def _retrying(call: object, *args: object) -> object:
    """``call(*args)``, retried while it raises BackendUnavailableError (as the core does)."""
    assert callable(call)
    with anyio.fail_after(15):
        while True:
            try:
                return await call(*args)
            except BackendUnavailableError:
                await anyio.sleep(0.05)


async def test_resharding_moves_appends_reads_and_groups(
    redis_cluster: RedisCluster, open_cluster: OpenBackend
) -> None:
    backend = await open_cluster(**FAST)
    source = redis_cluster.masters()[0]
    stream_id = stream_on(redis_cluster, source.port)
    consumer = await backend.open_group_consumer(stream_id, "g", "c", StartPosition.oldest())
    reader = await backend.open_reader(stream_id, StartPosition.oldest())
    (first,) = await backend.append([Entry(stream_id, "n", b"1")])
    assert [r.entry_id for r in await consumer.read_new(10, 0)] == [first]

    target = next(m for m in redis_cluster.masters() if m is not source)
    redis_cluster.move_slot(slot_of(stream_id), target)

    (second,) = await _retrying(backend.append, [Entry(stream_id, "n", b"2")])  # type: ignore[misc]
    assert redis_cluster.master_for_key(PREFIX + stream_id) is target
    records = await _retrying(consumer.read_new, 10, 0.1)
    assert [r.entry_id for r in records] == [second]  # type: ignore[attr-defined]
    await _retrying(consumer.ack, [first, second])
    assert (await consumer.pending_summary()).count == 0
    records = await _retrying(reader.read, 10, 0.1)
    assert [r.entry_id for r in records] == [first, second]  # type: ignore[attr-defined]


def _subscriber(backend: object, errors: list[StreamsinkError]) -> StreamSubscriber:
    return StreamSubscriber(
        backend,  # type: ignore[arg-type]
        SubscriberOptions(
            group="moves",
            start=StartPosition.oldest(),
            ack_grace_period=1.0,
            claim_interval=0.1,
            on_error=errors.append,
        ),
    )


async def _publish_through(
    backend: object,
    session: str,
    fault: object,
    *,
    at: int = 60,
    total: int = 150,
) -> tuple[list[int], set[int], list[StreamsinkError]]:
    """Send ``total`` events of one session while a group subscription consumes them; call
    ``fault()`` (in a worker thread) before event ``at``. What was sent (acknowledged), what was
    received, the errors the subscription reported."""
    assert callable(fault)
    errors: list[StreamsinkError] = []
    sent: list[int] = []
    received: set[int] = set()
    sink = StreamSink(backend)  # type: ignore[arg-type]
    async with _subscriber(backend, errors).subscribe(f"session/{session}") as sub:

        async def produce() -> None:
            for i in range(total):
                if i == at:
                    await anyio.to_thread.run_sync(fault)
                while True:
                    try:
                        await sink.send(StreamEvent("tool_start", "run", session, payload=i))
                    except BackendUnavailableError:
                        await anyio.sleep(0.05)  # a MOVED or a dead master: send it again
                        continue
                    except DurabilityError:
                        pass  # written, on a master that has no replica (yet)
                    except PublishError as exc:
                        # Its reply was lost with the master and the retry found the slot moved:
                        # maybe written, not sent again (retry-safe publishing).
                        if "outcome" not in str(exc):
                            raise
                        break
                    sent.append(i)
                    break
                await anyio.sleep(0.002)
            while not set(sent) <= received:  # noqa: ASYNC110 (a condition on a set)
                await anyio.sleep(0.01)
            await sub.aclose()

        with anyio.fail_after(40):
            async with anyio.create_task_group() as tg:
                tg.start_soon(produce)
                async for event in sub:
                    received.add(event.payload)
    return sent, received, errors


@pytest.mark.slow
async def test_manual_failover_under_a_subscription(
    redis_cluster: RedisCluster, open_cluster: OpenBackend
) -> None:
    """``CLUSTER FAILOVER`` on the replica of the stream's master, mid-stream: the writes and
    the group's reads follow the slot to the promoted replica; nothing acknowledged is lost
    (a manual failover waits for the replica to catch up)."""
    backend = await open_cluster(**FAST)
    session = uuid.uuid4().hex[:10]
    master = redis_cluster.master_for_key(f"{PREFIX}session/{session}")
    (replica,) = redis_cluster.replicas_of(master)
    sent, received, errors = await _publish_through(
        backend, session, lambda: redis_cluster.failover(replica)
    )
    assert redis_cluster.master_for_key(f"{PREFIX}session/{session}") is replica
    assert set(sent) <= received, f"lost: {sorted(set(sent) - received)}; errors: {errors}"
    assert all(isinstance(error, BackendUnavailableError) for error in errors), errors


@pytest.mark.slow
async def test_killed_master_fails_over_under_a_subscription(
    redis_cluster: RedisCluster, open_cluster: OpenBackend
) -> None:
    """SIGKILL of the stream's master: the cluster promotes its replica (cluster-node-timeout
    2 s), the sink and the subscription retry with backoff until it does, then carry on. With
    ``wait_replicas=1`` every send acknowledged before the kill was on the replica, so none is
    lost; until the killed master is back (as a replica) sends raise DurabilityError."""
    backend = await open_cluster(wait_replicas=1, wait_timeout=1, **FAST)
    session = uuid.uuid4().hex[:10]
    key = f"{PREFIX}session/{session}"
    master = redis_cluster.master_for_key(key)
    (replica,) = redis_cluster.replicas_of(master)
    slots = redis_cluster.slots_of(master)
    promoted = []

    def fault() -> None:
        redis_cluster.kill(master)
        promoted.append(redis_cluster.wait_for_failover(master, slots=slots))
        redis_cluster.restart(master)

    sent, received, errors = await _publish_through(backend, session, fault, at=30, total=90)
    assert promoted == [replica]
    assert set(sent) <= received, f"lost: {sorted(set(sent) - received)}; errors: {errors}"
    assert errors, "a killed master went unnoticed"
    assert all(isinstance(error, BackendUnavailableError) for error in errors), errors
