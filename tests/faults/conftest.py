"""Fixtures of the fault suite: real redis-server processes (and a Redis Cluster) to kill, flush
and restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis_cluster import RedisCluster, RedisClusterError
from tests.support.redis_fixtures import missing_redis
from tests.support.redis_server import RedisServer, RedisServerError, find_redis_server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``make test`` runs two workers) every fault test runs in one worker:
    their figures go to one ``build/fault-figures.json`` of one run, and two of them killing
    servers at once on two cores would measure each other's load."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.xdist_group("faults"))


@pytest.fixture
def anyio_backend() -> str:
    """The Redis backend runs on asyncio only."""
    return "asyncio"


def _server(**options: object) -> RedisServer:
    if not find_redis_server():
        missing_redis("no redis-server binary on PATH (the fault suite kills and restarts one)")
    try:
        return RedisServer(**options).start()  # type: ignore[arg-type]
    except RedisServerError as exc:
        missing_redis(str(exc))
        raise


@pytest.fixture
def durable_server() -> Iterator[RedisServer]:
    """A redis-server of this test's own with an append-only file fsynced on every write
    (``appendonly yes``, ``appendfsync always``): a SIGKILL loses nothing it acknowledged."""
    server = _server(appendonly=True, appendfsync="always")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A redis-server of this test's own, to FLUSHALL."""
    server = _server()
    try:
        yield server
    finally:
        server.stop()


# Short, so a killed master is failed over in about two seconds (node timeout, then the replica's
# election delay of 500 ms plus up to 500 ms at random).
FAILOVER_NODE_TIMEOUT_MS = 500


@pytest.fixture(scope="module")
def _failover_cluster() -> Iterator[RedisCluster]:
    if not find_redis_server():
        missing_redis("no redis-server binary on PATH (the failover tests kill cluster masters)")
    try:
        cluster = RedisCluster(node_timeout_ms=FAILOVER_NODE_TIMEOUT_MS).start()
    except (RedisServerError, RedisClusterError) as exc:
        missing_redis(str(exc))
        raise
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def failover_cluster(_failover_cluster: RedisCluster) -> Iterator[RedisCluster]:
    """A Redis Cluster of this module's own (3 masters, 3 replicas, ``cluster-node-timeout``
    500 ms), whole when the test starts and healed after it (every node up, replicas in sync)."""
    _failover_cluster.heal()
    try:
        yield _failover_cluster
    finally:
        _failover_cluster.heal()
