"""The public SPI checks (``streamsink.testing.spi_checks``) on fakeredis:// and a real
redis-server. What only the Redis backend has (its key layout, commands, connections, scripts)
is tested beside this file; what every backend must do is tested here, once, through the kit."""

from __future__ import annotations

import pytest

from streamsink.backend import Backend
from streamsink.testing import BackendFactory, SpiCheck, run_spi_check, spi_checks
from streamsink_redis import RedisBackend

from .conftest import raw_client_for, with_query

pytestmark = pytest.mark.anyio

# (server, check name) -> why that check is expected to fail there; empty while none does.
KNOWN_BUGS: dict[tuple[str, str], str] = {}


def redis_factory(url: str) -> BackendFactory:
    """Backends on ``url``, trimmed to ``maxlen`` when given (else unbounded)."""

    async def factory(*, maxlen: int | None = None) -> Backend:
        return await RedisBackend.open(with_query(url, maxlen=maxlen or 0))

    return factory


@pytest.mark.parametrize("check", spi_checks(), ids=str)
async def test_spi(check: SpiCheck, url: str, request: pytest.FixtureRequest) -> None:
    """The Redis backend keeps every SPI check its capabilities cover."""
    server = "fakeredis" if url.startswith("fakeredis://") else "redis"
    if bug := KNOWN_BUGS.get((server, check.name)):
        request.applymarker(pytest.mark.xfail(reason=bug, strict=True))

    async def destroy_group(backend: Backend, stream_id: str, group: str) -> None:
        """Lose a group behind the backend's back (XGROUP DESTROY): the stream stays."""
        assert isinstance(backend, RedisBackend)
        raw = raw_client_for(url)
        try:
            assert await raw.xgroup_destroy(backend.key(stream_id), group) == 1
        finally:
            await raw.aclose()

    factory = redis_factory(url)
    probe = await factory()
    capabilities = probe.capabilities
    await probe.aclose()
    result = await run_spi_check(check, factory, capabilities, lose_group=destroy_group)
    if "term" in check.requires:  # Redis has no native terminate: a dead letter is XACKed
        assert result.skipped is not None
    else:
        assert result.skipped is None, result.skipped
