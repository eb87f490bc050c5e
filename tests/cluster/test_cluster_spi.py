"""The public SPI checks (``streamsink.testing.spi_checks``) on a real Redis Cluster: every check
its capabilities cover, streams spread over every master."""

from __future__ import annotations

import pytest

from streamsink.backend import Backend
from streamsink.testing import SpiCheck, run_spi_check, spi_checks
from streamsink_redis import RedisBackend
from tests.support.redis_cluster import RedisCluster, command

from .conftest import with_query

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("check", spi_checks(), ids=str)
async def test_spi(check: SpiCheck, redis_cluster: RedisCluster) -> None:
    url = redis_cluster.url()

    async def factory(*, maxlen: int | None = None) -> Backend:
        return await RedisBackend.open(with_query(url, maxlen=maxlen or 0))

    async def destroy_group(backend: Backend, stream_id: str, group: str) -> None:
        """Lose a group behind the backend's back (XGROUP DESTROY on its master)."""
        assert isinstance(backend, RedisBackend)
        key = backend.key(stream_id)
        master = redis_cluster.master_for_key(key)
        assert command(master.port, "XGROUP", "DESTROY", key, group) == 1

    probe = await factory()
    capabilities = probe.capabilities
    await probe.aclose()
    result = await run_spi_check(check, factory, capabilities, lose_group=destroy_group)
    if "term" in check.requires or "shared_reads" in check.requires:
        assert result.skipped is not None  # no native terminate; no XREAD across slots
    else:
        assert result.skipped is None, result.skipped
