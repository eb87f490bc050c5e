"""What every scenario gets: the sizes, where each backend is, unique stream names, raw clients."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from ._config import Config

__all__ = ["BACKENDS", "KEY_PREFIX", "WAIT_QUERY", "Env"]

BACKENDS = ("redis", "nats", "memory", "fakeredis", "cluster", "cluster-wait")
KEY_PREFIX = "pulse:stream:"  # streamsink's default Redis key prefix
WAIT_QUERY = "wait_replicas=1"  # the cluster-wait backend: the cluster with WAIT 1 after appends
# The few URL options the scenarios set, under each backend's own name where it differs.
_OPTION_NAMES = {"nats": {"maxlen": "max_msgs"}}


def _fake_server() -> Any:
    import fakeredis

    return fakeredis.FakeServer()


@dataclass
class Env:
    config: Config
    redis_url: str
    nats_url: str | None = None  # a JetStream server, when the NATS rows run
    cluster_url: str | None = None  # redis+cluster://... (the cluster scenarios), or not run
    _fake: Any = field(default_factory=_fake_server)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def url(self, backend: str, **query: object) -> str:
        """The streamsink URL of ``backend``, with query options (``maxlen`` is spelled as
        that backend spells it)."""
        if backend == "nats" and self.nats_url is None:
            raise RuntimeError("no NATS server for this run (streamsink-nats not installed?)")
        if backend.startswith("cluster"):
            if self.cluster_url is None:
                raise RuntimeError("no Redis Cluster in this run (--no-cluster)")
            base = self.cluster_url + (f"?{WAIT_QUERY}" if backend == "cluster-wait" else "")
        else:
            base = {
                "redis": self.redis_url,
                "nats": self.nats_url or "",
                "memory": "memory://bench",
                "fakeredis": "fakeredis://bench",
            }[backend]
        if query:
            names = _OPTION_NAMES.get(backend, {})
            base += "&" if "?" in base else "?"
            base += "&".join(f"{names.get(key, key)}={value}" for key, value in query.items())
        return base

    def session(self) -> str:
        """A session id never used before in this process (so a fresh stream)."""
        return f"bench-{os.getpid()}-{next(self._ids)}"

    @asynccontextmanager
    async def raw_client(self, backend: str) -> AsyncIterator[aioredis.Redis]:
        """A plain redis-py asyncio client (hiredis parser) or a fakeredis one."""
        client: aioredis.Redis
        if backend == "redis":
            client = aioredis.Redis.from_url(self.redis_url)
        else:
            import fakeredis

            client = fakeredis.FakeAsyncRedis(server=self._fake)
        try:
            await client.ping()
            yield client
        finally:
            await client.aclose()
