"""``SingleFlight``: concurrent calls with one key share one call's value, never its error."""

from __future__ import annotations

import anyio
import pytest

from streamsink._single_flight import SingleFlight

pytestmark = pytest.mark.anyio


async def test_concurrent_calls_with_one_key_share_one_call() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    calls = 0
    release = anyio.Event()

    async def call() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return 42

    got: list[int] = []

    async def ask(key: str) -> None:
        got.append(await flights.run(key, call))

    async with anyio.create_task_group() as tg:
        for key in ("a", "a", "a", "b"):
            tg.start_soon(ask, key)
        await anyio.wait_all_tasks_blocked()
        assert flights.in_flight == 2
        release.set()
    assert got == [42, 42, 42, 42]
    assert calls == 2  # one per key
    assert flights.in_flight == 0
    assert await flights.run("a", call) == 42  # nothing in flight: a call of its own
    assert calls == 3


async def test_an_error_is_not_shared_each_waiter_calls_again() -> None:
    """The call in flight fails: its caller gets the error, each waiter makes its own call."""
    flights: SingleFlight[str, int] = SingleFlight()
    outcomes: list[object] = []
    attempts = 0
    release = anyio.Event()

    async def call() -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            await release.wait()
            raise ValueError("first one fails")
        return attempts

    async def ask() -> None:
        try:
            outcomes.append(await flights.run("k", call))
        except ValueError as exc:
            outcomes.append(str(exc))

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(ask)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert outcomes[0] == "first one fails"  # only the caller that made the failed call
    assert all(isinstance(outcome, int) for outcome in outcomes[1:]), outcomes
    assert attempts <= 3


async def test_a_cancelled_leader_leaves_the_waiters_to_call_themselves() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    got: list[str] = []

    async def slow() -> str:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def fast() -> str:
        return "mine"

    async with anyio.create_task_group() as tg:
        leader = anyio.CancelScope()

        async def lead() -> None:
            with leader:
                await flights.run("k", slow)

        async def wait() -> None:
            got.append(await flights.run("k", fast))

        tg.start_soon(lead)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(wait)
        await anyio.wait_all_tasks_blocked()
        assert got == []
        leader.cancel()
    assert got == ["mine"]
