"""The public conformance suite on every backend we ship: memory:// (asyncio and trio),
fakeredis://, a real redis-server and a real Redis Cluster (3 masters, 3 replicas). Checks are
skipped by declared capabilities only."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from urllib.parse import urlencode

import pytest

from streamsink import open_backend
from streamsink.backend import Backend
from streamsink.testing import BackendFactory, ConformanceCheck, conformance_checks, run_check

pytestmark = pytest.mark.anyio


def _factory(url: str) -> BackendFactory:
    async def factory(
        *, maxlen: int | None = None, max_age: float | None = None, idle_ttl: float | None = None
    ) -> Backend:
        given = {"maxlen": maxlen, "max_age": max_age, "idle_ttl": idle_ttl}
        options = {name: value for name, value in given.items() if value is not None}
        query = ("&" if "?" in url else "?") + urlencode(options) if options else ""
        return await open_backend(url + query)

    return factory


def _memory(request: pytest.FixtureRequest) -> str:
    return f"memory://conformance-{uuid.uuid4().hex[:8]}"


def _fakeredis(request: pytest.FixtureRequest) -> str:
    return f"fakeredis://conformance-{uuid.uuid4().hex[:8]}"


def _redis(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("redis_url"))


def _redis_cluster(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("redis_cluster_url"))


BROKERS: dict[str, Callable[[pytest.FixtureRequest], str]] = {
    "memory": _memory,
    "fakeredis": _fakeredis,
    "redis": _redis,
    "redis-cluster": _redis_cluster,
}


# (broker, runtime): redis.asyncio runs on asyncio only (its capabilities say trio=False), so
# only memory:// runs under trio too; the test checks the declaration agrees.
MATRIX = [
    ("memory", "asyncio"),
    ("memory", "trio"),
    ("fakeredis", "asyncio"),
    ("redis", "asyncio"),
    ("redis-cluster", "asyncio"),
]


@pytest.fixture(params=MATRIX, ids=["-".join(pair) for pair in MATRIX])
def target(request: pytest.FixtureRequest) -> tuple[str, str]:
    """A broker kind and the async runtime to run it on."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def anyio_backend(target: tuple[str, str]) -> str:
    return target[1]


@pytest.fixture
def broker_url(request: pytest.FixtureRequest, target: tuple[str, str]) -> str:
    """One broker per check: a fresh named memory or fakeredis broker, or the test Redis."""
    return BROKERS[target[0]](request)


@pytest.mark.parametrize("check", conformance_checks(), ids=str)
async def test_conformance(check: ConformanceCheck, broker_url: str, anyio_backend: str) -> None:
    """The backend keeps every rule of the contract its capabilities cover."""
    factory = _factory(broker_url)
    probe = await factory()
    capabilities = probe.capabilities
    await probe.aclose()
    assert capabilities.trio or anyio_backend != "trio"
    result = await run_check(check, factory, capabilities)
    if result.skipped:
        pytest.skip(result.skipped)
