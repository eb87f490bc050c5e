"""Redis Cluster against a single server: the private cluster, its scenarios, comparisons and
report section.

The cluster is the test suite's (``tests/support/redis_cluster.py``: 3 masters, 1 replica each,
on loopback, no persistence, as the single server), started once for the run. Two backends:
``cluster`` (``redis+cluster://``, defaults) and ``cluster-wait`` (the same with
``wait_replicas=1``: a ``WAIT 1`` after every append, the durability option). Every scenario
writes one fresh stream, so one master (and its replica) does the work: the figures are the
per-stream cost of the cluster, not its aggregate capacity over many streams.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path

from . import _streamsink as ss
from ._env import WAIT_QUERY
from ._scenarios import Scenario
from ._targets import Comparison, Outcome

__all__ = [
    "cluster_comparisons",
    "cluster_scenarios",
    "cluster_section",
    "private_cluster",
    "with_cluster",
]

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def private_cluster(enabled: bool) -> Iterator[str | None]:
    """The ``redis+cluster://`` URL of a private cluster, stopped on exit (None when not
    ``enabled``)."""
    if not enabled:
        yield None
        return
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.support.redis_cluster import RedisCluster

    with RedisCluster() as cluster:
        yield cluster.url()


def cluster_scenarios() -> list[Scenario]:
    """streamsink's send and consume work on ``cluster``, and its sends on ``cluster-wait``
    (consuming runs no WAIT: it would measure the same as ``cluster``)."""
    rows = [
        ("send-seq", "await sink.send(event)", ss.send_seq),
        ("send-64", "64 tasks, each await sink.send(event)", ss.send_concurrent),
        ("send-batch", "await sink.send_many(100 events)", ss.send_batch),
        ("consume", "auto mode: async for event in subscription", ss.consume),
    ]
    scenarios = [
        Scenario("cluster", "streamsink", work, how, partial(fn, backend="cluster"))
        for work, how, fn in rows
    ]
    scenarios += [
        Scenario("cluster-wait", "streamsink", work, f"{how}, WAIT 1 after each append",
                 partial(fn, backend="cluster-wait"))
        for work, how, fn in rows[:3]
    ]  # fmt: skip
    return scenarios


def cluster_comparisons() -> list[Comparison]:
    """Cluster / single server per work item, and the WAIT cost (cluster-wait / cluster)."""
    s, c, w = "redis/streamsink/", "cluster/streamsink/", "cluster-wait/streamsink/"
    labels = {
        "send-seq": "sequential send",
        "send-64": "64 concurrent send",
        "send-batch": "send_many(100)",
        "consume": "auto-mode consume",
    }
    result = [
        Comparison(f"cluster {label} / single Redis", c + work, s + work, group="cluster")
        for work, label in labels.items()
    ]
    result += [
        Comparison(f"cluster + WAIT 1 {label} / cluster", w + work, c + work, group="cluster")
        for work, label in labels.items()
        if work != "consume"
    ]
    return result


def with_cluster(scenarios: Sequence[Scenario]) -> list[Scenario]:
    """``scenarios`` with the cluster ones, each right after the single-server streamsink
    scenario of its work item (so the sides of a ratio run seconds apart in a pass)."""
    extra = cluster_scenarios()
    out: list[Scenario] = []
    for scenario in scenarios:
        out.append(scenario)
        if scenario.backend == "redis" and scenario.system == "streamsink":
            out += [s for s in extra if s.work == scenario.work]
    placed = {s.key for s in out}
    return out + [s for s in extra if s.key not in placed]


def cluster_section(
    rows: Sequence[Outcome], table: Callable[[Sequence[Outcome]], list[str]]
) -> list[str]:
    """The report's cluster section: ``rows`` rendered by ``table`` (nothing when the cluster
    did not run)."""
    if not any(o.ratio is not None for o in rows):
        return []
    return [
        "## Redis Cluster against a single server",
        "",
        "3 masters with 1 replica each, all on this machine's loopback with the client; one "
        "stream per scenario, so one master serves it. *cluster + WAIT 1* is "
        f"`redis+cluster://...?{WAIT_QUERY}` (a `WAIT 1` after every append).",
        "",
        *table(rows),
        "",
    ]
