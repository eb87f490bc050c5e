"""What the backend makes on the server, and how it tells a lost group from a lost stream."""

from __future__ import annotations

import pytest
from streamsink import GroupLostError, StreamDestroyedError
from streamsink.backend import Entry, StartPosition

from streamsink_nats import CAPABILITIES, NatsBackend, encode_name

pytestmark = pytest.mark.anyio


async def test_one_jetstream_stream_per_stream_with_one_subject(nats_url: str) -> None:
    backend = await NatsBackend.connect(nats_url)
    try:
        stream = "session/a.b c"
        await backend.append([Entry(stream, "n", b"{}", "t")])
        info = await backend.js.stream_info(backend.stream_name(stream))
        assert info.config.name == "STREAMSINK_" + encode_name(stream)
        assert info.config.subjects == ["streamsink." + encode_name(stream)]
        assert info.config.max_msgs == 1000
        await backend.destroy(stream)
        with pytest.raises(Exception, match="not found"):
            await backend.js.stream_info(backend.stream_name(stream))
    finally:
        await backend.aclose()


async def test_readers_leave_no_consumer_behind(nats_url: str) -> None:
    backend = await NatsBackend.connect(nats_url)
    try:
        stream = "session/readers"
        await backend.append([Entry(stream, "n", b"{}")])
        reader = await backend.open_reader(stream, StartPosition.oldest())
        assert len(await reader.read(10, 0)) == 1
        name = backend.stream_name(stream)
        assert (await backend.js.stream_info(name)).state.consumer_count == 1
        await reader.aclose()
        assert (await backend.js.stream_info(name)).state.consumer_count == 0
        await backend.destroy(stream)
    finally:
        await backend.aclose()


async def test_a_lost_group_is_not_a_lost_stream(nats_url: str) -> None:
    """Consumer deleted, stream kept: GroupLostError. Stream destroyed by another connection
    and created again by an append: StreamDestroyedError (its sequences started over)."""
    backend = await NatsBackend.connect(nats_url)
    other = await NatsBackend.connect(nats_url)
    try:
        stream = "session/lost"
        await backend.append([Entry(stream, "n", b"{}")])
        consumer = await backend.open_group_consumer(stream, "g", "c", StartPosition.oldest())
        assert len(await consumer.read_new(10, 0)) == 1
        await other.delete_group(stream, "g")
        with pytest.raises(GroupLostError):
            await consumer.read_new(10, 0)
        await consumer.ensure_group(StartPosition.after("1"))
        assert await consumer.read_new(10, 0) == []
        await other.destroy(stream)
        await other.append([Entry(stream, "n", b"{}")])  # a new stream, sequence 1 again
        with pytest.raises(StreamDestroyedError):
            await consumer.read_new(10, 0)
        await backend.destroy(stream)
    finally:
        await other.aclose()
        await backend.aclose()


async def test_memory_storage_is_not_persistent(nats_url: str) -> None:
    backend = await NatsBackend.connect(nats_url + "?storage=memory")
    try:
        assert backend.capabilities.persistent is False
        assert CAPABILITIES.persistent is True
        await backend.append([Entry("session/mem", "n", b"{}")])
        info = await backend.js.stream_info(backend.stream_name("session/mem"))
        assert info.config.storage == "memory"
        await backend.destroy("session/mem")
    finally:
        await backend.aclose()


def test_trio_is_refused_with_a_reason() -> None:
    import anyio
    from streamsink import ConfigurationError

    async def open_it() -> None:
        await NatsBackend.connect("nats://127.0.0.1:1")

    with pytest.raises(ConfigurationError, match="asyncio only"):
        anyio.run(open_it, backend="trio")
