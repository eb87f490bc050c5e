"""streamsink's public conformance kit (contract and SPI checks) on a real nats-server."""

from __future__ import annotations

from typing import Any

import pytest
import streamsink
from streamsink import StartPosition, StreamEvent
from streamsink.testing import (
    FaultyBackend,
    conformance_checks,
    run_check,
    run_spi_check,
    spi_checks,
)

from streamsink_nats import CAPABILITIES, NatsBackend

pytestmark = pytest.mark.anyio


@pytest.fixture
def open_backend(nats_url: str) -> Any:
    async def open_backend(*, maxlen: int | None = None) -> NatsBackend:
        """A new connection to the test server; trims streams to maxlen entries if given."""
        return await NatsBackend.connect(nats_url, max_msgs=maxlen or 0)

    return open_backend


async def lose_group(backend: Any, stream_id: str, group: str) -> None:
    """Delete the group's durable consumer behind the backend's back."""
    await backend.delete_group(stream_id, group)


# The SPI's settle calls name entries, not deliveries: a nack of a delivery that JetStream has
# already superseded (redelivered after AckWait while the application held it) lands on the newer
# delivery, and JetStream redelivers at once on every -NAK, so the core sees one delivery more
# than on a broker whose nack only makes an entry claimable, and dead-letters the entry twice.
# Whether it does depends on whether the late nack arrives before the core has read the newer
# delivery, so the check passes on some runs: not strict.
_SPI_GAPS = {
    "max_deliveries_dead_letters": "nack names an entry, not a delivery: a late nack of a "
    "superseded delivery makes JetStream redeliver once more (see README, 'Known gaps')",
}


# The checks that wait out grace periods and redeliveries (about a second each here): `slow`,
# so that `pytest -m "not slow"` is a quick local loop. CI runs them (see conftest.py).
_SLOW_CHECKS = {
    "subscriptions_filter_by_topic",
    "drain_redelivers_and_dead_letters",
    "in_progress_renews_the_lease",
    "manual_ack_is_idempotent",
    "max_deliveries_dead_letters",
    "exception_leaves_event_pending",
    "term_dead_letters_with_provenance",
    "leaving_normally_acks",
}


def _contract_params() -> list[Any]:
    params = []
    for check in conformance_checks():
        marks = [pytest.mark.slow] if str(check) in _SLOW_CHECKS else []
        if str(check) in _SPI_GAPS:
            marks.append(pytest.mark.xfail(reason=_SPI_GAPS[str(check)], strict=False))
        params.append(pytest.param(check, marks=marks))
    return params


def test_the_slow_checks_exist() -> None:
    """A renamed check would silently lose its mark."""
    assert {str(check) for check in conformance_checks()} >= _SLOW_CHECKS


@pytest.mark.parametrize("check", _contract_params(), ids=str)
async def test_contract(check: Any, open_backend: Any) -> None:
    result = await run_check(check, open_backend, CAPABILITIES)
    if result.skipped:
        pytest.skip(result.skipped)


@pytest.mark.parametrize("check", spi_checks(), ids=str)
async def test_spi(check: Any, open_backend: Any) -> None:
    result = await run_spi_check(check, open_backend, CAPABILITIES, lose_group=lose_group)
    if result.skipped:
        pytest.skip(result.skipped)


async def test_a_consumer_rides_out_an_outage(open_backend: Any) -> None:
    """FaultyBackend: three failed reads are retried by the core, the fourth delivers."""
    async with (
        FaultyBackend(await open_backend()) as backend,
        streamsink.connect(backend) as streams,
    ):
        subscriber = streams.new_subscriber(group="g", start=StartPosition.oldest())
        sent = await streams.sink.send(StreamEvent("tool_start", "run-1", "outage-1"))
        backend.fail("read_new", times=3)
        async with subscriber.subscribe(sent.stream_id) as events:
            event = await events.__anext__()
        assert event.entry_id == sent.entry_id
        assert backend.count("read_new", "failed") == 3
        await backend.destroy(sent.stream_id)
