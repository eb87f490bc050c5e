"""Destroying a Redis stream: through the subscription's own backend it ends the subscription,
from anywhere else it is a lost group that the subscription re-creates."""

from __future__ import annotations

import uuid

import anyio
import pytest

from streamsink import (
    StartPosition,
    StreamEvent,
    StreamSink,
    StreamSubscriber,
    SubscriberOptions,
)
from streamsink.backend import Backend
from streamsink_redis import RedisBackend

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["fakeredis", "redis"])
def broker_url(request: pytest.FixtureRequest) -> str:
    """A fresh fakeredis server, or the real test server."""
    if request.param == "fakeredis":
        return f"fakeredis://destroy-{uuid.uuid4().hex[:8]}"
    return str(request.getfixturevalue("redis_url"))


def _subscriber(backend: Backend) -> StreamSubscriber:
    options = SubscriberOptions(
        group="g", start=StartPosition.oldest(), claim_interval=0.05, ack_grace_period=0.3
    )
    return StreamSubscriber(backend, options)


async def test_group_vanished_elsewhere_is_recreated(broker_url: str) -> None:
    """A stream destroyed by another backend object looks like a lost group: the subscription
    re-creates it and goes on."""
    session = uuid.uuid4().hex[:12]
    stream = f"session/{session}"
    async with (
        await RedisBackend.open(broker_url) as backend,
        await RedisBackend.open(broker_url) as elsewhere,
    ):
        sink = StreamSink(backend)
        await sink.send(StreamEvent("tool_start", "run-0", session))
        async with _subscriber(backend).subscribe(stream) as sub:
            with anyio.fail_after(5):
                await sub.__anext__()
            await elsewhere.destroy(stream)
            await anyio.sleep(0.2)
            later = await sink.send(StreamEvent("tool_end", "run-0", session))
            with anyio.fail_after(5):
                event = await sub.__anext__()
            assert event.entry_id == later.entry_id
            assert sub.statistics().groups_recreated >= 1


async def test_destroy_through_the_same_backend_ends_the_subscription(broker_url: str) -> None:
    """A destroy through the subscription's own backend ends its iteration without error."""
    session = uuid.uuid4().hex[:12]
    stream = f"session/{session}"
    async with await RedisBackend.open(broker_url) as backend:
        await StreamSink(backend).send(StreamEvent("tool_start", "run-0", session))
        async with _subscriber(backend).subscribe(stream) as sub:
            with anyio.fail_after(5):
                await sub.__anext__()
            await backend.destroy(stream)
            with anyio.fail_after(2):
                async for event in sub:
                    raise AssertionError(f"unexpected {event!r} after destroy")
