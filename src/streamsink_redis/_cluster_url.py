"""The Redis Cluster parts of a URL: its schemes, its options, its seed list (no redis import)."""

from __future__ import annotations

import math
from typing import Any

import attrs

from streamsink import ConfigurationError
from streamsink.backend import BackendURL
from streamsink.backend.options import option_error

__all__ = [
    "CLUSTER_KEYS",
    "CLUSTER_SCHEMES",
    "cluster_seeds",
    "describe_cluster",
    "refuse_keepalive",
    "wait_timeout_check",
]

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
CLUSTER_KEYS = ("wait_replicas", "wait_timeout")


def wait_timeout_check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """attrs validator of ``wait_timeout``: seconds from 0.001 to 3600 (WAIT takes ms, and
    ``WAIT n 0`` would wait forever)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0.001 <= value <= 3600
    ):
        raise option_error(
            "RedisOptions", attribute.name, value, "a number of seconds from 0.001 to 3600"
        )


def refuse_keepalive() -> ConfigurationError:
    """``pulse_keepalive=true`` on a cluster."""
    return option_error(
        "RedisOptions",
        "pulse_keepalive",
        True,
        "false on Redis Cluster (pulse's keep-alive scripts write the stream, its consumers map "
        "and its group's keep-alive map together, and those keys lie in different slots)",
    )


def cluster_seeds(url: BackendURL) -> tuple[tuple[str, int], ...]:
    """The ``host:port`` seeds a cluster URL names (port 6379 when left out).

    :raises ConfigurationError: the URL has a path (a cluster has database 0 only).
    """
    if url.path not in ("", "/"):
        raise ConfigurationError(
            f"{url.scheme}:// URL {url} has path {url.path!r}; a cluster has database 0 only, so "
            "expected none (redis+cluster://host:port,host:port?options)"
        )
    named = url.hosts or ((url.host, url.port),)
    return tuple((host or "localhost", 6379 if port is None else port) for host, port in named)


def describe_cluster(seeds: tuple[tuple[str, int], ...], *, ssl: bool) -> str:
    """``redis+cluster://h1:p1,h2:p2,h3:p3,+N more``: three seeds say which cluster it is; all
    of them would crowd every message."""
    hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in seeds[:3])
    more = f",+{len(seeds) - 3} more" if len(seeds) > 3 else ""
    return f"{'rediss' if ssl else 'redis'}+cluster://{hosts}{more}"
