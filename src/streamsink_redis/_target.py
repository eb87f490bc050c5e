"""Where the Redis backend connects: a TCP or TLS host, a unix socket, an in-process fakeredis
server, or the seeds of a Redis Cluster (no redis import here)."""

from __future__ import annotations

from typing import Literal, final

import attrs

from ._cluster_url import describe_cluster

__all__ = ["ConnectionTarget"]


@final
@attrs.frozen(kw_only=True)
class ConnectionTarget:
    """Where to connect: a TCP host (``ssl`` for rediss), a unix socket path, or an in-process
    fakeredis server (``fake_name``, case-insensitive; empty = the process-wide default one)."""

    kind: Literal["tcp", "unix", "fake", "cluster"]
    host: str = ""
    port: int = 6379
    path: str = ""
    # Both hidden from repr: a token in the user part is as secret as a password.
    username: str | None = attrs.field(default=None, repr=False)
    password: str | None = attrs.field(default=None, repr=False)
    ssl: bool = False
    fake_name: str = ""
    seeds: tuple[tuple[str, int], ...] = ()  # cluster: the nodes the URL names

    def describe(self, db: int) -> str:
        """Password-free ``scheme://location`` for logs and errors."""
        if self.kind == "cluster":
            return describe_cluster(self.seeds, ssl=self.ssl)
        if self.kind == "fake":
            return f"fakeredis://{self.fake_name}"
        if self.kind == "unix":
            return f"unix://{self.path}?db={db}"
        return f"{'rediss' if self.ssl else 'redis'}://{self.host}:{self.port}/{db}"
