"""Pipelined appends: a batch is published at once, its ids come back in order per stream."""

from __future__ import annotations

import pytest
from streamsink import BackendUnavailableError
from streamsink.backend import Entry, StartPosition

from streamsink_nats import NatsBackend

pytestmark = pytest.mark.anyio


async def test_a_batch_over_two_streams_keeps_each_streams_order(nats_url: str) -> None:
    backend = await NatsBackend.connect(nats_url, max_msgs=0)
    try:
        entries = [
            Entry(f"session/order-{i % 2}", "n", str(i).encode(), f"t{i}") for i in range(500)
        ]
        ids = await backend.append(entries)
        assert len(ids) == 500
        for parity in (0, 1):
            mine = [int(ids[i]) for i in range(parity, 500, 2)]
            assert mine == list(range(1, 251)), "ids of one stream are not 1, 2, 3, ... in order"
            reader = await backend.open_reader(f"session/order-{parity}", StartPosition.oldest())
            got = await reader.read(300, 0)
            await reader.aclose()
            assert [r.payload for r in got] == [str(i).encode() for i in range(parity, 500, 2)]
            assert [r.topic for r in got] == [f"t{i}" for i in range(parity, 500, 2)]
            await backend.destroy(f"session/order-{parity}")
    finally:
        await backend.aclose()


async def test_a_stream_deleted_behind_its_back_is_created_again(nats_url: str) -> None:
    """Another connection deletes the stream: the next batch lands in a new one (sequences
    from 1 again), every entry in order."""
    backend = await NatsBackend.connect(nats_url)
    other = await NatsBackend.connect(nats_url)
    try:
        stream = "session/deleted-behind"
        await backend.append([Entry(stream, "n", b"0")])
        await other.destroy(stream)
        ids = await backend.append([Entry(stream, "n", str(i).encode()) for i in range(1, 6)])
        assert ids == ["1", "2", "3", "4", "5"]
        reader = await backend.open_reader(stream, StartPosition.oldest())
        got = await reader.read(10, 0)
        await reader.aclose()
        assert [r.payload for r in got] == [b"1", b"2", b"3", b"4", b"5"]
        await backend.destroy(stream)
    finally:
        await other.aclose()
        await backend.aclose()


@pytest.mark.slow  # waits out the timeout, kept long enough for a loaded machine's requests
async def test_a_server_that_does_not_acknowledge_is_unavailable(nats_url: str) -> None:
    """A subject nothing stores (its stream is gone and we believe it exists) with a short
    ``request_timeout``: a JetStream that does not answer is BackendUnavailableError, not a
    hang, and the connection keeps working afterwards."""
    backend = await NatsBackend.connect(nats_url, request_timeout=1)
    try:
        stream = "session/no-ack"
        await backend.append([Entry(stream, "n", b"0")])
        # Drop the JetStream side of the subject without telling the backend, then make the
        # acknowledgement never come: a plain subscriber on the subject answers nothing.
        await backend.js.delete_stream(backend.stream_name(stream))
        sub = await backend.nc.subscribe(backend.subject(stream))
        with pytest.raises(BackendUnavailableError, match="append"):
            await backend.append([Entry(stream, "n", b"1"), Entry(stream, "n", b"2")])
        await sub.unsubscribe()
        assert await backend.append([Entry(stream, "n", b"3")]) == ["1"]
        await backend.destroy(stream)
    finally:
        await backend.aclose()
