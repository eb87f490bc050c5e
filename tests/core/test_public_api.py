"""The public surface: names, errors tree, small value types."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import anyio
import anyio.lowlevel
import pytest

import streamsink
from streamsink import (
    AckError,
    BackendClosedError,
    BackendNotFoundError,
    BackendUnavailableError,
    ClosedError,
    ConfigurationError,
    DeadLetter,
    DecodeError,
    EventType,
    PublishError,
    SinkClosedError,
    StartPosition,
    StreamsinkError,
    SubscriptionError,
    decode_dead_letter,
    encode_dead_letter,
)
from streamsink._backoff import Backoff
from streamsink._coalesce import Coalescer
from streamsink.backend import GroupLostError, StreamDestroyedError
from streamsink.backend.redis_ids import after_timestamp_id, parse_entry_id


def test_all_names_exist_and_are_unique() -> None:
    """Every name in __all__ exists and appears once."""
    assert len(set(streamsink.__all__)) == len(streamsink.__all__)
    for name in streamsink.__all__:
        assert hasattr(streamsink, name), name


def test_every_error_has_one_root() -> None:
    """All streamsink errors derive from StreamsinkError, with builtin bases where promised."""
    for error in (
        ConfigurationError,
        BackendNotFoundError,
        SinkClosedError,
        PublishError,
        DecodeError,
        AckError,
        SubscriptionError,
        BackendUnavailableError,
        GroupLostError,
        StreamDestroyedError,
        ClosedError,
        BackendClosedError,
    ):
        assert issubclass(error, StreamsinkError)
    # Both kinds of "closed" are ClosedError; a destroyed stream is a clean end, not a retry.
    assert issubclass(SinkClosedError, ClosedError)
    assert issubclass(BackendClosedError, ClosedError)
    assert not issubclass(StreamDestroyedError, BackendUnavailableError)
    assert issubclass(GroupLostError, BackendUnavailableError)
    # streamsink.backend names the same classes.
    assert streamsink.backend.StreamDestroyedError is streamsink.StreamDestroyedError
    assert streamsink.backend.GroupLostError is streamsink.GroupLostError
    assert issubclass(ConfigurationError, ValueError)
    assert issubclass(BackendNotFoundError, LookupError)
    errors = [
        obj
        for _, obj in inspect.getmembers(streamsink._exceptions, inspect.isclass)
        if issubclass(obj, Exception) and obj.__module__ == "streamsink._exceptions"
    ]
    assert set(errors) <= {getattr(streamsink, n) for n in streamsink.__all__}


def test_event_types_are_the_runtime_vocabulary() -> None:
    """EventType has the 19 runtime event types and compares equal to their strings."""
    assert len(EventType) == 19
    assert EventType.RUN_STREAM_END == "run_stream_end"
    assert {"tool_start", "tool_end", "assistant_reply", "workflow", "usage"} <= set(EventType)


def test_start_positions() -> None:
    """Start positions are values; at() needs an aware datetime and is inclusive in id terms."""
    from datetime import UTC, datetime

    assert StartPosition.newest() == StartPosition.newest()
    assert str(StartPosition.after("5-1")) == "after(5-1)"
    with pytest.raises(ConfigurationError):
        StartPosition.after("")
    with pytest.raises(ConfigurationError, match="timezone-aware"):
        StartPosition.at(datetime(2026, 1, 1))
    stamp = datetime.fromtimestamp(1_700_000_000.123, UTC)
    assert after_timestamp_id(stamp) == f"1700000000122-{2**64 - 1}"
    assert parse_entry_id("5-3") == (5, 3)
    assert parse_entry_id("7") == (7, 0)
    with pytest.raises(ConfigurationError):
        parse_entry_id("x-1")


def test_dead_letters_round_trip_binary_payloads() -> None:
    """A dead letter keeps its payload byte-exact, text or binary, and refuses other documents."""
    for payload in (b'{"type":"x"}', b"\xff\x00junk", None):
        letter = DeadLetter(
            origin_stream="s",
            entry_id="1-0",
            group="g",
            consumer="c",
            attempts=3,
            reason="why",
            event_name="tool_end",
            payload=payload,
        )
        assert decode_dead_letter(encode_dead_letter(letter)) == letter
    with pytest.raises(DecodeError):
        decode_dead_letter(b'{"entry_id": "1-0"}')


@pytest.mark.anyio
async def test_coalescer_survives_a_cancelled_leader() -> None:
    """A batch whose leading caller is cancelled still goes out for the callers waiting on it."""
    calls: list[list[int]] = []
    release = anyio.Event()

    async def call(items: list[int]) -> list[int]:
        calls.append(list(items))
        if len(calls) == 1:
            await release.wait()  # the first call stays in flight until the test lets it go
        return [i * 10 for i in items]

    coalescer: Coalescer[int, int] = Coalescer(call)  # type: ignore[arg-type]
    results: dict[int, list[int]] = {}
    leader_scope = anyio.CancelScope()

    async def submit(i: int) -> None:
        results[i] = list(await coalescer.submit([i]))

    async def leader() -> None:
        with leader_scope:
            await submit(1)

    async def until(condition: Callable[[], bool]) -> None:
        while not condition():  # other tasks run at each checkpoint; fail_after bounds it
            await anyio.lowlevel.checkpoint()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(submit, 0)  # in flight
            await until(lambda: len(calls) == 1)
            tg.start_soon(leader)  # leads the next batch
            await until(lambda: coalescer._collecting is not None)
            tg.start_soon(submit, 2)  # follows it
            await until(
                lambda: coalescer._collecting is not None and len(coalescer._collecting.items) == 2
            )
            leader_scope.cancel()
            release.set()
    assert results[0] == [0]
    assert results[2] == [20]
    assert calls[1] == [1, 2]


@pytest.mark.anyio
async def test_backoff_grows_and_gives_up() -> None:
    """Backoff delays grow with failures and raise SubscriptionError past the budget."""
    backoff = Backoff(budget=0.15, initial=0.02, maximum=0.05)
    error = BackendUnavailableError("down")
    started = anyio.current_time()

    async def fail_forever() -> None:
        for _ in range(100):
            await backoff.wait(error)

    with pytest.raises(SubscriptionError, match="giving up") as caught:
        await fail_forever()
    assert caught.value.__cause__ is error
    assert 0.15 <= anyio.current_time() - started < 1.0
    assert backoff.attempts < 20
    backoff.reset()
    assert backoff.attempts == 0
