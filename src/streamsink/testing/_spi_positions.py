"""SPI checks of where a group starts (start positions, an existing group keeps its
position) and of the arguments a group consumer refuses."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio

from .._exceptions import ConfigurationError
from ..backend import StartPosition
from ._spi import GROUPS, NEWEST, OLDEST, SpiHarness, ids, raises, spi_check
from ._spi import call as _call

__all__: list[str] = []


@spi_check("open_group_consumer", "read_new", requires=GROUPS)
async def group_start_positions(h: SpiHarness) -> None:
    """A new group starts where its start says: ``newest`` after what the stream holds,
    ``oldest`` at its first entry, ``after(id)`` exclusive, ``at(time)`` at entries from then."""
    backend = await h.backend()
    stream = h.stream()
    sent = await h.append(backend, stream, 2)
    await anyio.sleep(0.02)
    middle = datetime.now(UTC)
    await anyio.sleep(0.02)
    sent += await h.append(backend, stream, 2, first=2)
    starts = {
        "oldest": (OLDEST, sent),
        "after": (StartPosition.after(sent[0]), sent[1:]),
        "at-before": (StartPosition.at(datetime(2000, 1, 1, tzinfo=UTC)), sent),
        "at-middle": (StartPosition.at(middle), sent[2:]),
        "newest": (NEWEST, []),
    }
    consumers = {}
    for name, (start, expected) in starts.items():
        (consumers[name],) = await h.consumers(backend, stream, "c", start=start)
        got = ids(await consumers[name].read_new(10, 0))
        assert got == expected, f"group started at {name} read {got}, expected {expected}"
    later = await h.append(backend, stream, 1, first=4)
    for name, consumer in consumers.items():
        got = ids(await consumer.read_new(10, 0))
        assert got == later, f"group started at {name} then read {got}, expected {later}"


@spi_check("open_group_consumer", "ensure_group", "read_new", requires=GROUPS)
async def an_existing_group_keeps_its_position(h: SpiHarness) -> None:
    """Joining or ensuring an existing group with another start does not move it."""
    backend = await h.backend()
    stream = h.stream()
    group = h.name("group")
    first = await backend.open_group_consumer(stream, group, "a", OLDEST)
    await h.append(backend, stream, 3)
    assert len(await first.read_new(10, 0)) == 3
    again = await backend.open_group_consumer(stream, group, "b", OLDEST)
    await again.ensure_group(OLDEST)
    assert await again.read_new(10, 0) == [], "re-joining at oldest replayed the group"
    late = await backend.open_group_consumer(stream, h.name("group"), "c", NEWEST)
    await h.append(backend, stream, 1, first=3)
    await late.ensure_group(OLDEST)
    assert len(await late.read_new(10, 0)) == 1, "ensure_group(oldest) moved a newest group"


@spi_check("read_new", "read_own_pending", "claim_idle", requires=GROUPS)
async def counts_must_be_positive(h: SpiHarness) -> None:
    """Reads and claims refuse a ``count`` below 1 with ConfigurationError (those the backend
    declares: ``read_own_pending`` with ``own_pending``, ``claim_idle`` with ``claims``)."""
    backend = await h.backend()
    stream = h.stream()
    (consumer,) = await h.consumers(backend, stream, "c")
    for count in (0, -1):
        calls = {"read_new": _call(consumer.read_new, count, 0)}
        if h.capabilities.own_pending:
            calls["read_own_pending"] = _call(consumer.read_own_pending, None, count)
        if h.capabilities.redelivery and h.capabilities.claims:
            calls["claim_idle"] = _call(consumer.claim_idle, 0, count)
        for name, call in calls.items():
            await raises(ConfigurationError, call, f"{name}(count={count})")


@spi_check("open_group_consumer", "open_reader", requires=GROUPS)
async def a_malformed_start_id_is_refused(h: SpiHarness) -> None:
    """``after(id)`` with an id that is not an entry id raises ConfigurationError when the group
    consumer or reader is opened."""
    backend = await h.backend()
    stream = h.stream()
    bad = StartPosition.after("not-an-id")
    await raises(
        ConfigurationError,
        lambda: backend.open_group_consumer(stream, h.name("group"), "c", bad),
        "open_group_consumer(after('not-an-id'))",
    )
    if h.capabilities.fan_out:
        await raises(
            ConfigurationError,
            lambda: backend.open_reader(stream, bad),
            "open_reader(after('not-an-id'))",
        )
