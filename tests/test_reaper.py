"""SubscriberOptions.reap_idle: a group's consumers that hold nothing and were idle past the
bound are removed, those holding entries never, once per group and process (memory and Redis)."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import attrs
import pytest

import streamsink
from streamsink import StartPosition, StreamEvent, SubscriberOptions
from streamsink.backend import Capabilities
from streamsink_memory import MemoryBackend, MemoryBroker

pytestmark = pytest.mark.anyio
OLDEST = StartPosition.oldest()
BOUND = 0.3


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis-py is asyncio-only


@pytest.fixture(params=["memory", "redis"])
def url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return f"memory://reaper-{uuid.uuid4().hex}"
    return str(request.getfixturevalue("redis_url"))


async def _consumer(backend: Any, stream_id: str, name: str, *, keep: bool) -> None:
    """A consumer that read one entry and then 'crashed': holding it (``keep``) or not."""
    consumer = await backend.open_group_consumer(stream_id, "g", name, OLDEST)
    (record,) = await consumer.read_new(1, 1.0)
    if not keep:
        await consumer.ack([record.entry_id])


async def test_idle_empty_consumers_go_holders_stay(url: str) -> None:
    session = f"reap-{uuid.uuid4().hex}"
    stream_id = f"session/{session}"
    async with streamsink.connect(url) as streams:
        backend = streams.backend
        for _ in range(3):
            await streams.sink.send(StreamEvent("usage", "run-1", session))
        await _consumer(backend, stream_id, "crashed-empty", keep=False)
        await _consumer(backend, stream_id, "crashed-holding", keep=True)
        subscriber = streams.new_subscriber(
            SubscriberOptions(group="g", reap_idle=BOUND, consumer_name="live")
        )
        async with subscriber.subscribe(stream_id, start=OLDEST) as events:
            await anext(aiter(events))
            with anyio.fail_after(5):
                # The backend's state, not an event of ours: polled.
                while (await _names(backend, stream_id)) != ["crashed-holding", "live"]:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            assert events.statistics().consumers_reaped == 1
            await anyio.sleep(BOUND * 2)  # later turns leave the holder alone
            assert await _names(backend, stream_id) == ["crashed-holding", "live"]
        await backend.destroy(stream_id)


async def _names(backend: Any, stream_id: str) -> list[str]:
    return [c.name for c in await backend.list_consumers(stream_id, "g") or []]


class _CountingBackend(MemoryBackend):
    listed = 0

    async def list_consumers(self, stream_id: str, group: str) -> Any:
        type(self).listed += 1
        return await super().list_consumers(stream_id, group)


async def test_once_per_group_and_process() -> None:
    backend = _CountingBackend(MemoryBroker())
    async with streamsink.connect(backend) as streams:
        await streams.sink.send(StreamEvent("usage", "run-1", "s"))
        options = SubscriberOptions(group="g", reap_idle=0.2)
        async with anyio.create_task_group() as tg:
            for _ in range(10):

                async def hold() -> None:
                    async with streams.new_subscriber(options).subscribe("session/s") as events:
                        with anyio.move_on_after(1.05):
                            async for _ in events:
                                pass

                tg.start_soon(hold)
    # One turn per 0.1 s for the group over ~1 s (not ten): a few more for timing slack.
    assert 5 <= _CountingBackend.listed <= 14


class _NoOperations(MemoryBackend):
    @property
    def capabilities(self) -> Capabilities:
        return attrs.evolve(super().capabilities, operations=False)


async def test_needs_a_backend_that_lists_consumers() -> None:
    async with streamsink.connect(_NoOperations(MemoryBroker())) as streams:
        subscriber = streams.new_subscriber(SubscriberOptions(group="g", reap_idle=5))
        with pytest.raises(streamsink.ConfigurationError, match="reap_idle=5 needs a backend"):
            subscriber.subscribe("session/s")
        # fan-out readers ignore it
        reader = streams.new_subscriber(SubscriberOptions(group=None, reap_idle=5))
        assert reader.subscribe("session/s") is not None


@pytest.mark.parametrize("bad", [0, -1, True, "5", float("inf")])
async def test_bad_values_are_named(bad: Any) -> None:
    with pytest.raises(streamsink.ConfigurationError, match="reap_idle"):
        SubscriberOptions(reap_idle=bad)
