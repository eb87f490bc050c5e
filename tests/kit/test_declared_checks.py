"""The checks of the optional SPI (grace at open, entry times, native terminate) pass on backends
that keep them and fail on backends that break them; and the core makes only the calls a
backend's capabilities allow, so a broker that redelivers by itself and has no per-member
ownership (as NATS JetStream) passes the contract."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from streamsink.backend import Backend
from streamsink.testing import (
    FaultyBackend,
    conformance_checks,
    run_check,
    run_spi_check,
    spi_checks,
)
from streamsink_memory import MemoryBackend, MemoryBroker, MemoryOptions
from tests.support.declared import LateTimes, SelfRedelivering, Terminating

pytestmark = pytest.mark.anyio


def _factory(make: Callable[..., Backend], **kwargs: Any) -> Any:
    """Backends made by ``make`` on one broker, trimmed to ``maxlen`` (and by ``max_age``,
    expiring after ``idle_ttl``) when given."""
    broker = MemoryBroker()

    async def factory(
        *, maxlen: int | None = None, max_age: float | None = None, idle_ttl: float | None = None
    ) -> Backend:
        options = MemoryOptions(maxlen=maxlen or 0, max_age=max_age or 0, idle_ttl=idle_ttl or 0)
        return make(broker, options=options, **kwargs)

    return factory


def _spi(name: str) -> Any:
    (check,) = [c for c in spi_checks() if c.name == name]
    return check


CASES = {
    # check: (backend that keeps it, backend that breaks it)
    "redelivery_follows_the_grace_period_given_at_open": (
        _factory(SelfRedelivering),
        _factory(SelfRedelivering, broken=True),
    ),
    "entry_times_are_where_at_starts": (_factory(MemoryBackend), _factory(LateTimes)),
    "term_ends_deliveries_for_good": (_factory(Terminating), _factory(Terminating, broken=True)),
}


@pytest.mark.parametrize("name", sorted(CASES))
async def test_the_check_passes_on_a_backend_that_keeps_it(name: str) -> None:
    factory, _ = CASES[name]
    probe = await factory()
    result = await run_spi_check(_spi(name), factory, probe.capabilities)
    assert result.skipped is None, result.skipped


@pytest.mark.parametrize("name", sorted(CASES))
async def test_the_check_fails_on_a_backend_that_breaks_it(name: str) -> None:
    _, factory = CASES[name]
    probe = await factory()
    with pytest.raises(AssertionError):
        await run_spi_check(_spi(name), factory, probe.capabilities)


async def test_the_grace_check_holds_on_claiming_backends_too() -> None:
    """memory:// (the core claims) keeps it as well."""
    factory = _factory(MemoryBackend)
    check = _spi("redelivery_follows_the_grace_period_given_at_open")
    assert (await run_spi_check(check, factory, MemoryBackend().capabilities)).skipped is None


@pytest.mark.parametrize("check", conformance_checks(), ids=str)
async def test_a_self_redelivering_backend_keeps_the_contract(check: Any) -> None:
    """Its consumers refuse claim_idle and read_own_pending (it declares neither), so any such
    call by the core fails the check."""
    factory = _factory(SelfRedelivering)
    result = await run_check(check, factory, (await factory()).capabilities)
    if result.skipped:
        pytest.skip(result.skipped)


async def test_dead_letters_are_settled_by_a_native_term() -> None:
    """With Capabilities.term, the core settles a dead-lettered entry by term, not ack: after a
    manual term(reason), and after max_deliveries."""
    broker = MemoryBroker()
    terms: list[list[str]] = []
    opened: list[FaultyBackend] = []

    async def factory(*, maxlen: int | None = None) -> Backend:
        backend = FaultyBackend(Terminating(broker, terms=terms))
        opened.append(backend)
        return backend

    for name in ("term_dead_letters_with_provenance", "max_deliveries_dead_letters"):
        (check,) = [c for c in conformance_checks() if c.name == name]
        before = len(terms)
        result = await run_check(check, factory, (await factory()).capabilities)
        assert result.skipped is None
        assert len(terms) == before + 1, (name, terms)
    assert sum(backend.count("term") for backend in opened) == 2
    acks = [call for backend in opened for call in backend.calls if call.method == "ack"]
    assert acks == [], acks
