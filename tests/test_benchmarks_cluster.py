"""The cluster rows of the benchmarks: their URLs, where they sit in a pass, their comparisons
and report section. No Redis needed."""

from __future__ import annotations

import pytest
from benchmarks._cluster import cluster_comparisons, cluster_section, with_cluster
from benchmarks._config import Config
from benchmarks._env import Env
from benchmarks._measure import Rate
from benchmarks._report import _comparison_table
from benchmarks._scenarios import catalogue
from benchmarks._targets import evaluate

CLUSTER = "redis+cluster://127.0.0.1:7000,127.0.0.1:7001"


def test_cluster_urls_carry_the_wait_option_and_the_scenario_query() -> None:
    env = Env(Config.quick(), "redis://127.0.0.1:6379/0", cluster_url=CLUSTER)
    assert env.url("cluster") == CLUSTER
    assert env.url("cluster", maxlen=0) == f"{CLUSTER}?maxlen=0"
    assert env.url("cluster-wait") == f"{CLUSTER}?wait_replicas=1"
    assert env.url("cluster-wait", maxlen=0) == f"{CLUSTER}?wait_replicas=1&maxlen=0"
    assert env.url("redis", maxlen=0) == "redis://127.0.0.1:6379/0?maxlen=0"


def test_a_cluster_scenario_without_a_cluster_says_so() -> None:
    env = Env(Config.quick(), "redis://127.0.0.1:6379/0")
    with pytest.raises(RuntimeError, match="--no-cluster"):
        env.url("cluster-wait")


def test_cluster_scenarios_run_right_after_their_single_server_counterpart() -> None:
    keys = [s.key for s in with_cluster(catalogue(faststream=False, fakeredis=False))]
    for work in ("send-seq", "send-64", "send-batch"):
        at = keys.index(f"redis/streamsink/{work}")
        assert keys[at + 1 : at + 3] == [
            f"cluster/streamsink/{work}",
            f"cluster-wait/streamsink/{work}",
        ]
    at = keys.index("redis/streamsink/consume")
    assert keys[at + 1] == "cluster/streamsink/consume"
    assert "cluster-wait/streamsink/consume" not in keys  # consuming runs no WAIT
    assert len(keys) == len(set(keys))


def test_the_section_shows_per_pass_ratios_and_is_left_out_when_the_cluster_did_not_run() -> None:
    samples = {
        "redis/streamsink/send-seq": [Rate(1000, 1.0), Rate(1000, 0.5)],
        "cluster/streamsink/send-seq": [Rate(1000, 2.0), Rate(1000, 0.5)],
        "cluster-wait/streamsink/send-seq": [Rate(1000, 8.0), Rate(1000, 1.0)],
    }
    outcomes = evaluate(cluster_comparisons(), samples)
    lines = cluster_section(outcomes, _comparison_table)
    text = "\n".join(lines)
    assert lines[0] == "## Redis Cluster against a single server"
    # Per pass: 500 / 1000 and 2000 / 2000 -> median 0.75; WAIT: 125 / 500 and 1000 / 2000.
    assert "| cluster sequential send / single Redis | 0.75 | 0.50-1.00 |" in text
    assert "| cluster + WAIT 1 sequential send / cluster | 0.38 | 0.25-0.50 |" in text
    assert "| cluster auto-mode consume / single Redis | not run |" in text
    assert cluster_section(evaluate(cluster_comparisons(), {}), _comparison_table) == []
