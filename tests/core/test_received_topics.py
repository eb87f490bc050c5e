"""Received events and deliveries carry their entry's topic (pulse field ``t``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streamsink import Envelope, StreamEvent, StreamSink, encode_envelope
from streamsink.backend import Entry
from streamsink_memory import MemoryBackend, MemoryBroker
from tests.support.subscriptions import subscriber, take

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("manual", [False, True])
async def test_received_items_carry_the_entry_topic(manual: bool) -> None:
    backend = MemoryBackend(MemoryBroker())
    envelope = encode_envelope(
        Envelope(type="tool_start", run_id="r", session_id="s", timestamp=datetime.now(UTC))
    )
    await backend.append([Entry("session/s", "tool_start", envelope, topic="ops")])
    await StreamSink(backend).send(StreamEvent("tool_end", "r", "s", payload=2))
    made = subscriber(backend, group="g")
    opened = made.subscribe_manual("session/s") if manual else made.subscribe("session/s")
    async with opened as items:
        first, second = await take(items, 2)
    topics = [item.topic for item in (first, second)]
    if manual:
        topics += [first.event.topic, second.event.topic]
        assert topics == ["ops", None, "ops", None]
    else:
        assert topics == ["ops", None]
