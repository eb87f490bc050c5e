"""Worker: handlers until a stop, then a graceful shutdown with a deadline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest

import streamsink
from streamsink import StartPosition, StreamEvent, SubscriberOptions, Worker
from streamsink_memory import MemoryBackend, MemoryBroker

pytestmark = pytest.mark.anyio

OLDEST = StartPosition.oldest()


async def _send(streams: streamsink.RuntimeStreams, *types: str, session: str = "s-1") -> None:
    for event_type in types:
        await streams.sink.send(StreamEvent(event_type, "run-1", session))


async def _pending(backend: Any, stream_id: str, group: str) -> int:
    """How many entries the group holds pending (claimed, not redelivered: nothing is changed
    that the test looks at afterwards)."""
    probe = await backend.open_group_consumer(stream_id, group, "probe", OLDEST)
    try:
        return len(await probe.claim_idle(0, 100))
    finally:
        await probe.aclose()


async def test_manual_handlers_ack_and_a_stop_ends_run() -> None:
    async with streamsink.connect(f"memory://worker-ack-{uuid.uuid4().hex}") as streams:
        await _send(streams, "tool_start", "tool_end", "run_stream_end")
        seen: list[str] = []
        worker = Worker(shutdown_timeout=1)

        async def handle(event: StreamEvent) -> None:
            seen.append(event.type)
            if event.type == "run_stream_end":
                worker.stop()

        subscriber = streams.new_subscriber(group="persist")
        worker.consume(subscriber.subscribe_manual("session/s-1", start=OLDEST), handle)
        with anyio.fail_after(5):
            await worker.run()
        assert seen == ["tool_start", "tool_end", "run_stream_end"]
        # Everything was acked: a new consumer of the group gets nothing.
        again = streams.new_subscriber(group="persist")
        async with again.subscribe_manual("session/s-1") as deliveries:
            with anyio.move_on_after(0.2):
                async for delivery in deliveries:
                    pytest.fail(f"redelivered {delivery!r}")


async def test_failing_handler_nacks_until_dead_lettered() -> None:
    options = SubscriberOptions(group="flaky", max_deliveries=3, ack_grace_period=0.2)
    async with streamsink.connect(
        f"memory://worker-nack-{uuid.uuid4().hex}", subscriber_options=options
    ) as streams:
        await _send(streams, "usage")
        attempts = 0
        worker = Worker(shutdown_timeout=1)

        async def handle(event: StreamEvent) -> None:
            nonlocal attempts
            attempts += 1
            raise ValueError("boom")

        subscriber = streams.new_subscriber()
        worker.consume(subscriber.subscribe_manual("session/s-1", start=OLDEST), handle)
        letters = streams.new_subscriber(group="dlq-reader")
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run)
            with anyio.fail_after(5):
                async with letters.subscribe_dead_letters("session/s-1", start=OLDEST) as dlq:
                    letter = await anext(aiter(dlq))
            worker.stop()
        assert attempts == 3
        assert (letter.origin_stream, letter.attempts, letter.group) == ("session/s-1", 3, "flaky")


async def test_stop_finishes_the_running_handler_and_starts_nothing_new() -> None:
    async with streamsink.connect(f"memory://worker-finish-{uuid.uuid4().hex}") as streams:
        await _send(streams, "tool_start", "tool_end")
        started = anyio.Event()
        finished: list[str] = []
        worker = Worker(shutdown_timeout=5)

        async def handle(event: StreamEvent) -> None:
            started.set()
            await anyio.sleep(0.2)  # still running when the stop comes
            finished.append(event.type)

        subscriber = streams.new_subscriber(group="slow")
        worker.consume(subscriber.subscribe_manual("session/s-1", start=OLDEST), handle)
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run)
            await started.wait()
            worker.stop()
        assert finished == ["tool_start"]  # finished, and the second was not started
        assert await _pending(streams.backend, "session/s-1", "slow") == 0


async def test_deadline_cancels_handlers_and_leaves_their_events_pending() -> None:
    backend = MemoryBackend(MemoryBroker())
    async with streamsink.connect(backend) as streams:
        await _send(streams, "tool_start")
        started = anyio.Event()
        worker = Worker(shutdown_timeout=0.1)

        async def handle(event: StreamEvent) -> None:
            started.set()
            await anyio.sleep_forever()

        subscriber = streams.new_subscriber(group="stuck")
        worker.consume(subscriber.subscribe_manual("session/s-1", start=OLDEST), handle)
        returned = anyio.Event()

        async def run() -> None:
            await worker.run()
            returned.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await started.wait()
            worker.stop()
            with anyio.fail_after(2):  # though the handler never ends
                await returned.wait()
        assert await _pending(backend, "session/s-1", "stuck") == 1


async def test_auto_mode_logs_a_failure_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    async with streamsink.connect(f"memory://worker-auto-{uuid.uuid4().hex}") as streams:
        await _send(streams, "tool_start", "run_stream_end")
        seen: list[str] = []
        worker = Worker()

        async def handle(event: StreamEvent) -> None:
            seen.append(event.type)
            if event.type == "run_stream_end":
                worker.stop()
            raise RuntimeError(f"failed on {event.type}")

        reader = streams.new_subscriber(group=None)
        worker.consume(reader.subscribe("session/s-1", start=OLDEST), handle)
        with anyio.fail_after(5):
            await worker.run()
        assert seen == ["tool_start", "run_stream_end"]
        assert "failed on tool_start" in caplog.text


async def test_a_failing_subscription_ends_the_worker_with_its_error() -> None:
    async with streamsink.connect(f"memory://worker-destroyed-{uuid.uuid4().hex}") as streams:
        await _send(streams, "tool_start", session="a")
        await _send(streams, "tool_start", session="b")
        handled: list[str] = []
        worker = Worker(shutdown_timeout=1)

        async def destroy_a(event: StreamEvent) -> None:
            handled.append(f"a:{event.type}")
            await streams.backend.destroy("session/a")

        async def keep_b(event: StreamEvent) -> None:
            handled.append(f"b:{event.type}")

        subscriber = streams.new_subscriber(group="g")
        worker.consume(subscriber.subscribe_manual("session/a", start=OLDEST), destroy_a)
        worker.consume(subscriber.subscribe_manual("session/b", start=OLDEST), keep_b)
        with anyio.fail_after(5), pytest.raises(streamsink.StreamDestroyedError, match="session/a"):
            await worker.run()
        assert sorted(handled) == ["a:tool_start", "b:tool_start"]


async def test_bad_input_is_named() -> None:
    for bad in (-1, float("nan"), "10", True):
        with pytest.raises(streamsink.ConfigurationError, match="shutdown_timeout"):
            Worker(shutdown_timeout=bad)  # type: ignore[arg-type]
    worker = Worker()
    with pytest.raises(streamsink.ConfigurationError, match="takes a subscription"):
        worker.consume("session/s-1", lambda e: None)  # type: ignore[arg-type]
    async with streamsink.connect(f"memory://worker-bad-{uuid.uuid4().hex}") as streams:
        subscription = streams.new_subscriber(group="g").subscribe("session/s-1")
        with pytest.raises(streamsink.ConfigurationError, match="async callable"):
            worker.consume(subscription, "handler")  # type: ignore[arg-type]


_SIGTERM_WORKER = textwrap.dedent(
    """
    import sys, anyio, streamsink
    from streamsink import StartPosition, StreamEvent, Worker

    async def main():
        async with streamsink.connect("memory://") as streams:
            for i in range(3):
                await streams.sink.send(StreamEvent("usage", "run-1", "s-1", payload=i))
            worker = Worker(shutdown_timeout=float(sys.argv[1]))

            async def handle(event):
                print("start", event.payload, flush=True)
                await anyio.sleep(float(sys.argv[2]))
                print("done", event.payload, flush=True)

            subscriber = streams.new_subscriber(group="g")
            worker.consume(subscriber.subscribe_manual("session/s-1", start=StartPosition.oldest()), handle)
            await worker.run()
            print("exited", flush=True)

    anyio.run(main)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(
    ("timeout", "handler_seconds", "signals", "expected"),
    [
        ("5", "0.3", 1, ["start 0", "done 0", "exited"]),  # the running handler finishes
        ("5", "30", 2, ["start 0", "exited"]),  # a second signal cancels it
        ("0.2", "30", 1, ["start 0", "exited"]),  # the deadline cancels it
    ],
)
def test_sigterm_in_a_worker_process(
    tmp_path: Path, timeout: str, handler_seconds: str, signals: int, expected: list[str]
) -> None:
    script = tmp_path / "worker.py"
    script.write_text(_SIGTERM_WORKER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSINK_")}
    with subprocess.Popen(
        [sys.executable, str(script), timeout, handler_seconds],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "start 0"
        for _ in range(signals):
            process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert ["start 0", *out.split("\n")][:-1] == expected
