"""Fixtures of the Redis Cluster tests: asyncio only, the private cluster, backends on it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tests.support.redis_backends import OpenBackend, opened_backends
from tests.support.redis_backends import with_query as with_query  # tests import it from here
from tests.support.redis_cluster import RedisCluster, key_slot

PREFIX = "pulse:stream:"


@pytest.fixture
def anyio_backend() -> str:
    """redis.asyncio runs on asyncio only."""
    return "asyncio"


@pytest.fixture
async def open_cluster(redis_cluster_url: str) -> AsyncIterator[OpenBackend]:
    """Open backends on the test cluster with extra query options; all closed after the test."""
    async with opened_backends(redis_cluster_url) as open_:
        yield open_


def stream_on(cluster: RedisCluster, master_port: int, stem: str = "test") -> str:
    """A fresh stream id whose key (under pulse's prefix) the master at ``master_port`` serves."""
    while True:
        stream_id = f"{stem}/{uuid.uuid4().hex[:10]}"
        if cluster.master_for_key(PREFIX + stream_id).port == master_port:
            return stream_id


def streams_on_every_master(cluster: RedisCluster, stem: str = "test") -> list[str]:
    """One fresh stream id per master, each served by a different one."""
    return [stream_on(cluster, master.port, stem) for master in cluster.masters()]


def slot_of(stream_id: str) -> int:
    return key_slot(PREFIX + stream_id)
