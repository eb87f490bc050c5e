"""``Handoff``: the queue between a subscription's pump and the application (asyncio and trio)."""

from __future__ import annotations

import anyio
import pytest

from streamsink._consuming._handoff import Handoff

pytestmark = pytest.mark.anyio


async def test_batches_come_out_in_order_without_waiting() -> None:
    """Queued batches are taken in order; taking one that is there does not wait."""
    handoff: Handoff[int] = Handoff()
    for batch in (1, 2, 3):
        assert handoff.put(batch) is False  # nobody was waiting
    with anyio.fail_after(1):
        assert [await handoff.get() for _ in range(3)] == [1, 2, 3]
    with pytest.raises(anyio.WouldBlock):
        handoff.get_nowait()


async def test_a_waiting_getter_wakes_on_put() -> None:
    """A getter finding nothing waits until a batch is put; the put says it woke someone."""
    handoff: Handoff[str] = Handoff()
    got: list[str] = []

    async def get() -> None:
        got.append(await handoff.get())

    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            tg.start_soon(get)
            await anyio.wait_all_tasks_blocked()
            assert got == []
            assert handoff.put("batch") is True  # it woke the getter
    assert got == ["batch"]


async def test_close_drains_then_ends_every_getter() -> None:
    """After close, what is queued is still taken; then getters, waiting or new, get
    EndOfStream; and nothing more can be put."""
    handoff: Handoff[int] = Handoff()
    ended = 0

    async def get_until_end() -> None:
        nonlocal ended
        with pytest.raises(anyio.EndOfStream):
            await handoff.get()
        ended += 1

    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            tg.start_soon(get_until_end)
            tg.start_soon(get_until_end)
            await anyio.wait_all_tasks_blocked()
            handoff.close()
    assert ended == 2
    second: Handoff[int] = Handoff()
    second.put(7)
    second.close()
    assert await second.get() == 7
    with pytest.raises(anyio.EndOfStream):
        second.get_nowait()
    with pytest.raises(anyio.ClosedResourceError):
        second.put(8)


async def test_a_cancelled_getter_leaves_the_next_batch_for_others() -> None:
    """A getter cancelled while waiting unregisters: the next batch goes to a live getter."""
    handoff: Handoff[int] = Handoff()
    with anyio.move_on_after(0.05):
        await handoff.get()
    handoff.put(1)
    with anyio.fail_after(1):
        assert await handoff.get() == 1
