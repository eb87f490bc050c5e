"""pytest fixtures for a real Redis, shared by every suite that needs one (a pytest plugin).

A private ``redis-server`` on a free port when the binary is installed, else
``$STREAMSINK_TEST_REDIS_URL``, else skip — except under ``CI=true``, where a missing Redis fails
the run instead of hiding the real-server tests. The same for a Redis Cluster (``redis_cluster_url``,
``redis_cluster``): a private one of six nodes, else ``$STREAMSINK_TEST_REDIS_CLUSTER_URL``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer, RedisServerError, find_redis_server

ENV_URL = "STREAMSINK_TEST_REDIS_URL"


def missing_redis(reason: str) -> None:
    """Skip, or fail under CI=true, where a missing Redis must not hide the real-server tests."""
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{reason} (CI=true: a real Redis is required)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def _private_server() -> Iterator[RedisServer | None]:
    if not find_redis_server():
        yield None
        return
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(_private_server: RedisServer | None) -> str:
    """A real Redis: a private redis-server on a free port, else $STREAMSINK_TEST_REDIS_URL."""
    if _private_server is not None:
        return _private_server.url
    env_url = os.environ.get(ENV_URL)
    if not env_url:
        missing_redis(f"no redis-server binary on PATH and {ENV_URL} is not set")
    return str(env_url)


@pytest.fixture
def redis_process() -> Iterator[RedisServer]:
    """A private redis-server of this test's own, to kill, restart or FLUSHALL."""
    if not find_redis_server():
        missing_redis("no redis-server binary on PATH (needed to kill and restart a server)")
    try:
        server = RedisServer().start()
    except RedisServerError as exc:
        missing_redis(str(exc))
        raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def durable_server() -> Iterator[RedisServer]:
    """A private redis-server with appendonly yes and appendfsync always (loses nothing it
    acknowledged when killed), to kill and restart."""
    if not find_redis_server():
        missing_redis("no redis-server binary on PATH (needed to kill and restart a server)")
    try:
        server = RedisServer(appendonly=True, appendfsync="always").start()
    except RedisServerError as exc:
        missing_redis(str(exc))
        raise
    try:
        yield server
    finally:
        server.stop()


# -- Redis Cluster ---------------------------------------------------------------------------

CLUSTER_ENV_URL = "STREAMSINK_TEST_REDIS_CLUSTER_URL"


@pytest.fixture(scope="session")
def _private_cluster() -> Iterator[RedisCluster | None]:
    if not find_redis_server():
        yield None
        return
    with RedisCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_cluster_url(_private_cluster: RedisCluster | None) -> str:
    """A real Redis Cluster (``redis+cluster://h1:p1,...``): a private one of 3 masters and 3
    replicas on free ports, else $STREAMSINK_TEST_REDIS_CLUSTER_URL (skip without either; fail
    under CI=true)."""
    if _private_cluster is not None:
        return _private_cluster.url()
    env_url = os.environ.get(CLUSTER_ENV_URL)
    if not env_url:
        missing_redis(f"no redis-server binary on PATH and {CLUSTER_ENV_URL} is not set")
    return str(env_url)


@pytest.fixture
def redis_cluster(_private_cluster: RedisCluster | None) -> Iterator[RedisCluster]:
    """The private cluster itself, to kill, restart or fail over nodes; healed after the test
    (every node up, cluster_state:ok, replicas in sync), so later tests find it whole."""
    if _private_cluster is None:
        missing_redis("no redis-server binary on PATH (needed to run a private Redis Cluster)")
    assert _private_cluster is not None
    try:
        yield _private_cluster
    finally:
        _private_cluster.heal()
