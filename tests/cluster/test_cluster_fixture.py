"""The private Redis Cluster the cluster tests run on: formed, routed, failed over and healed."""

from __future__ import annotations

import pytest

from tests.support.redis_cluster import RedisCluster, RedisClusterError, command, key_slot


def test_key_slot_matches_the_server(redis_cluster: RedisCluster) -> None:
    node = redis_cluster.nodes[0]
    for key in ("pulse:stream:a", "{session-42}:x", "pulse:stream:{session-42}/b", "{}x", "é"):
        assert key_slot(key) == command(node.port, "CLUSTER", "KEYSLOT", key)


def test_cluster_is_whole(redis_cluster: RedisCluster) -> None:
    masters = redis_cluster.masters()
    assert len(masters) == 3
    assert all(len(redis_cluster.replicas_of(master)) == 1 for master in masters)
    assert redis_cluster.url().startswith("redis+cluster://127.0.0.1:")
    assert redis_cluster.url().count(",") == 5


def test_a_key_is_served_by_its_master_only(redis_cluster: RedisCluster) -> None:
    key = "fixture:{routing}"
    owner = redis_cluster.master_for_key(key)
    assert command(owner.port, "SET", key, "1") == "OK"
    other = next(master for master in redis_cluster.masters() if master is not owner)
    with pytest.raises(RedisClusterError, match="MOVED"):
        command(other.port, "GET", key)


@pytest.mark.slow
def test_manual_failover_moves_the_slot_and_heals(redis_cluster: RedisCluster) -> None:
    key = "fixture:{failover}"
    owner = redis_cluster.master_for_key(key)
    (replica,) = redis_cluster.replicas_of(owner)
    redis_cluster.failover(replica)
    assert redis_cluster.master_for_key(key) is replica
    redis_cluster.failover(owner)
    assert redis_cluster.master_for_key(key) is owner
