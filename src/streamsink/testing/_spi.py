"""SPI-level checks: the backend objects called directly, as the core calls them.

Each check is a plain coroutine on a :class:`SpiHarness` raising AssertionError, pytest-free.
The checks live in ``_spi_groups``, ``_spi_settling``, ``_spi_superseded`` and
``_spi_positions`` (consumer groups), ``_spi_streams`` (appends, readers, blocking),
``_spi_lifecycle`` (closing, destroying, lost groups) and ``_spi_declared`` (what a backend may
declare); this module holds what they share.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import attrs

from .._exceptions import StreamsinkError
from ..backend import (
    Backend,
    Capabilities,
    DeliveryKey,
    Entry,
    GroupConsumer,
    Record,
    StartPosition,
)
from ._harness import BackendFactory, Harness, Timing

__all__ = ["SPI_CHECKS", "GroupLoser", "SpiCheck", "SpiHarness", "spi_check"]

GroupLoser = Callable[[Backend, str, str], Awaitable[None]]
"""``lose_group(backend, stream_id, group)``: make ``group`` vanish behind the backend's back, as
a broker restart without persistence, or a wipe of the broker's data, would. The checks of lost
groups need it and are skipped without it."""

OLDEST = StartPosition.oldest()
NEWEST = StartPosition.newest()

# The capabilities the checks require, by what they exercise.
GROUPS = ("consumer_groups",)
OWN = ("consumer_groups", "own_pending")
CLAIMS = ("consumer_groups", "redelivery", "claims")
CLAIMS_OWN = (*CLAIMS, "own_pending")
FAN_OUT = ("fan_out",)
BOTH = ("consumer_groups", "fan_out")
PROMPT = 0.5  # seconds within which a woken or cancelled read must return


@attrs.frozen
class SpiCheck:
    """One check of the backend SPI (:mod:`streamsink.backend`), run on backend objects directly.

    ``calls`` names the SPI methods it exercises; ``requires`` the
    :class:`~streamsink.backend.Capabilities` flags it needs; ``hooks`` the optional hooks of
    :func:`~streamsink.testing.run_spi_check` it needs (``"lose_group"``). A check lacking a
    flag or a hook is skipped, never failed.
    """

    name: str
    summary: str
    calls: tuple[str, ...]
    requires: tuple[str, ...]
    hooks: tuple[str, ...]
    function: Callable[[SpiHarness], Awaitable[None]] = attrs.field(repr=False)

    def missing(self, capabilities: Capabilities) -> list[str]:
        """The required capabilities the backend does not declare."""
        return [flag for flag in self.requires if not getattr(capabilities, flag)]

    def __str__(self) -> str:
        return self.name


SPI_CHECKS: list[SpiCheck] = []


def spi_check(
    *calls: str, requires: tuple[str, ...] = (), hooks: tuple[str, ...] = ()
) -> Callable[[Callable[[SpiHarness], Awaitable[None]]], Callable[[SpiHarness], Awaitable[None]]]:
    """Register a check (its docstring's first line is its summary)."""

    def register(
        function: Callable[[SpiHarness], Awaitable[None]],
    ) -> Callable[[SpiHarness], Awaitable[None]]:
        summary = " ".join((function.__doc__ or "").strip().split("\n\n")[0].split())
        SPI_CHECKS.append(SpiCheck(function.__name__, summary, calls, requires, hooks, function))
        return function

    return register


class SpiHarness(Harness):
    """A :class:`Harness` with what SPI checks need: entries, groups of consumers, the hooks."""

    def __init__(
        self,
        factory: BackendFactory,
        capabilities: Capabilities,
        timing: Timing,
        *,
        lose_group: GroupLoser | None = None,
    ) -> None:
        super().__init__(factory, capabilities, timing)
        self.lose_group_hook = lose_group

    async def lose_group(self, backend: Backend, stream_id: str, group: str) -> None:
        """Make the group vanish through the hook the check was run with."""
        if self.lose_group_hook is None:  # pragma: no cover - such checks are skipped
            raise AssertionError("this check needs the lose_group hook")
        await self.lose_group_hook(backend, stream_id, group)

    @staticmethod
    def entries(stream_id: str, count: int, *, first: int = 0) -> list[Entry]:
        """``count`` entries named ``e<i>`` with payload ``b"<i>"``."""
        return [Entry(stream_id, f"e{i}", b"%d" % i) for i in range(first, first + count)]

    async def append(
        self, backend: Backend, stream_id: str, count: int, first: int = 0
    ) -> list[str]:
        """Append ``count`` entries; their ids, checked to be one per entry."""
        ids = await backend.append(self.entries(stream_id, count, first=first))
        assert len(ids) == count, f"append of {count} entries returned {len(ids)} ids"
        return list(ids)

    async def consumers(
        self, backend: Backend, stream_id: str, *names: str, start: StartPosition = OLDEST
    ) -> list[GroupConsumer]:
        """Consumers ``names`` of one new group on ``stream_id``."""
        group = self.name("group")
        return [await backend.open_group_consumer(stream_id, group, n, start) for n in names]

    async def settle_idle(self) -> None:
        """Sleep just past the grace period the redelivery checks use as ``min_idle``."""
        await anyio.sleep(self.timing.grace * 1.2)

    async def redelivered(self, consumer: GroupConsumer, count: int = 10) -> Sequence[Record]:
        """What the group redelivers to ``consumer`` now, as the core would get it: a claim of
        entries idle for the grace period (``Capabilities.claims``), else a read, where the
        backend hands redeliveries out by itself (the consumer was opened with
        ``ack_grace_period=timing.grace``)."""
        if self.capabilities.claims:
            return await consumer.claim_idle(self.timing.grace, count)
        return await consumer.read_new(count, 0)


def ids(records: Sequence[Record]) -> list[str]:
    return [record.entry_id for record in records]


def counts(records: Sequence[Record]) -> list[tuple[str, int]]:
    return [(record.entry_id, record.delivery_count) for record in records]


def keys(records: Sequence[Record]) -> list[DeliveryKey]:
    """The deliveries ``records`` made, as ``nack`` and ``touch`` name them."""
    return [DeliveryKey.of(record) for record in records]


async def raises(
    expected: type[BaseException] | tuple[type[BaseException], ...],
    call: Callable[[], Awaitable[Any]],
    what: str,
) -> BaseException:
    """Await ``call()``; fail unless it raises ``expected``. Returns the error."""
    try:
        result = await call()
    except expected as exc:
        return exc
    except StreamsinkError as exc:
        raise AssertionError(f"{what} raised {type(exc).__name__} ({exc}), not {expected}") from exc
    raise AssertionError(f"{what} returned {result!r} instead of raising {expected}")


def call(function: Callable[..., Awaitable[Any]], *args: Any) -> Callable[[], Awaitable[Any]]:
    """``function(*args)``, to await later (in :func:`raises`)."""
    return lambda: function(*args)


class Elapsed:
    """``with Elapsed() as t: ...``; then ``t.seconds``."""

    def __enter__(self) -> Elapsed:
        self.start = anyio.current_time()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = anyio.current_time() - self.start
