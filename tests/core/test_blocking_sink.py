"""BlockingSink: publishing from threads, with StreamSink's errors and nothing lost on close."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest
from anyio.from_thread import start_blocking_portal

import streamsink
from streamsink import BlockingSink, StartPosition, StreamEvent
from streamsink_memory import MemoryBackend, MemoryBroker


def _read_all(backend: MemoryBackend, stream_id: str) -> list[tuple[str, str]]:
    """(entry id, event type) of every entry of the stream, read with a fan-out reader."""

    async def read() -> list[tuple[str, str]]:
        async with streamsink.connect(backend) as streams:
            subscriber = streams.new_subscriber(group=None)
            found: list[tuple[str, str]] = []
            async with subscriber.subscribe(stream_id, start=StartPosition.oldest()) as events:
                with anyio.move_on_after(0.5):
                    async for event in events:
                        found.append((event.entry_id, event.type))
            return found

    return anyio.run(read)


def test_sends_from_many_threads_all_arrive() -> None:
    """Eight threads sending at once: every send returns its own id and every event is stored."""
    backend = MemoryBackend(MemoryBroker())
    with BlockingSink(backend) as sink:

        def produce(worker: int) -> list[str]:
            return [
                sink.send(StreamEvent(f"tick_{worker}", "run-1", "s-1", payload=i)).entry_id
                for i in range(50)
            ]

        with ThreadPoolExecutor(8) as pool:
            ids = [entry_id for batch in pool.map(produce, range(8)) for entry_id in batch]
    assert len(ids) == len(set(ids)) == 400
    stored = _read_all(backend, "session/s-1")
    assert sorted(entry_id for entry_id, _ in stored) == sorted(ids)


def test_send_many_keeps_order_and_validates_first() -> None:
    backend = MemoryBackend(MemoryBroker())
    with BlockingSink(backend) as sink:
        published = sink.send_many(
            StreamEvent(t, "run-1", "s-1") for t in ("tool_start", "tool_end", "run_stream_end")
        )
        assert [p.event.type for p in published] == ["tool_start", "tool_end", "run_stream_end"]
        with pytest.raises(streamsink.ConfigurationError, match="session"):
            sink.send_many(
                [StreamEvent("usage", "run-1", "s-1"), StreamEvent("usage", "run-1", "")]
            )
        with pytest.raises(streamsink.ConfigurationError, match="iterable"):
            sink.send_many(42)  # type: ignore[arg-type]
    assert [t for _, t in _read_all(backend, "session/s-1")] == [
        "tool_start",
        "tool_end",
        "run_stream_end",
    ]


def test_errors_are_stream_sinks_own() -> None:
    with (
        BlockingSink("memory://blocking-errors") as sink,
        pytest.raises(streamsink.ConfigurationError, match="session"),
    ):
        sink.send(StreamEvent("usage", "run-1", ""))
    with pytest.raises(streamsink.SinkClosedError, match="closed BlockingSink"):
        sink.send(StreamEvent("usage", "run-1", "s-1"))
    sink.close()  # idempotent
    assert sink.closed


def test_bad_url_and_bad_async_backend_are_named() -> None:
    with pytest.raises(streamsink.BackendNotFoundError):
        BlockingSink("nosuch://x")
    with pytest.raises(streamsink.ConfigurationError, match="async_backend='curio'"):
        BlockingSink(async_backend="curio")
    assert not [t for t in threading.enumerate() if t.name == "streamsink-blocking-sink"]


def test_close_waits_for_sends_in_flight() -> None:
    """A send that started before close() completes and its entry is kept."""
    backend = MemoryBackend(MemoryBroker())
    started = threading.Event()
    results: list[str] = []
    real_append = backend.append

    async def slow_append(entries):  # type: ignore[no-untyped-def]
        started.set()
        await anyio.sleep(0.2)
        return await real_append(entries)

    backend.append = slow_append  # type: ignore[method-assign]
    sink = BlockingSink(backend)
    sender = threading.Thread(
        target=lambda: results.append(sink.send(StreamEvent("usage", "r", "s-1")).entry_id)
    )
    sender.start()
    assert started.wait(5)
    sink.close()
    assert len(results) == 1  # close() returned only after the send did
    sender.join(5)
    assert [entry_id for entry_id, _ in _read_all(backend, "session/s-1")] == results


def test_trio_event_loop() -> None:
    backend = MemoryBackend(MemoryBroker())
    with BlockingSink(backend, async_backend="trio") as sink:
        assert sink.send(StreamEvent("usage", "run-1", "s-1")).stream_id == "session/s-1"


def test_refuses_calls_from_async_code() -> None:
    with BlockingSink("memory://blocking-async") as sink:

        async def misuse() -> None:
            sink.send(StreamEvent("usage", "run-1", "s-1"))

        with pytest.raises(RuntimeError, match="from asyncio code"):
            anyio.run(misuse)
        with start_blocking_portal() as portal, pytest.raises(RuntimeError, match="blocks"):
            portal.call(misuse)
