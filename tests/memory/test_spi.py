"""The public SPI checks (``streamsink.testing.spi_checks``) on memory://, under asyncio and
trio. What only memory:// has (its broker's internals, fake clocks, id layout) is tested beside
this file; what every backend must do is tested here, once, through the kit."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

import pytest

from streamsink import open_backend
from streamsink.backend import Backend
from streamsink.testing import BackendFactory, SpiCheck, run_spi_check, spi_checks
from streamsink_memory import MemoryBackend

pytestmark = pytest.mark.anyio


def memory_factory() -> BackendFactory:
    """Backends on one new named broker, trimmed to ``maxlen`` when given (else unbounded)."""
    url = f"memory://spi-{uuid.uuid4().hex[:8]}"

    async def factory(*, maxlen: int | None = None) -> Backend:
        return await open_backend(f"{url}?{urlencode({'maxlen': maxlen or 0})}")

    return factory


async def drop_group(backend: Backend, stream_id: str, group: str) -> None:
    """Lose a group as a broker restart would: the broker forgets it, the stream stays."""
    assert isinstance(backend, MemoryBackend)
    assert backend.broker.drop_group(stream_id, group)


@pytest.mark.parametrize("check", spi_checks(), ids=str)
async def test_spi(check: SpiCheck, anyio_backend: str) -> None:
    """memory:// keeps every SPI check its capabilities cover, on both runtimes."""
    factory = memory_factory()
    probe = await factory()
    capabilities = probe.capabilities
    await probe.aclose()
    result = await run_spi_check(check, factory, capabilities, lose_group=drop_group)
    if "term" in check.requires:  # memory:// has no native terminate: a dead letter is acked
        assert result.skipped is not None
    else:  # and declares every other capability
        assert result.skipped is None, result.skipped
