"""Entry point of the Redis backend: registers its URL schemes, imports nothing heavy.

redis-py is imported inside the factory, so this module loads (and ``memory://`` keeps working)
when the ``redis`` extra is not installed; opening a Redis URL then explains how to install it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from streamsink import ConfigurationError
from streamsink.hookspecs import hookimpl

if TYPE_CHECKING:
    from streamsink.backend import Backend, BackendFactory, BackendURL

__all__ = ["FAKEREDIS_HINT", "INSTALL_HINT", "open_redis_backend", "streamsink_add_backends"]

INSTALL_HINT = "pip install 'streamsink[redis]'"
FAKEREDIS_HINT = "pip install 'streamsink[fakeredis]'"
_DRIVERS = ("redis", "fakeredis", "hiredis")


async def open_redis_backend(url: BackendURL) -> Backend:
    """Factory for ``redis://``, ``rediss://``, ``unix://``, ``fakeredis://``,
    ``redis+cluster://`` and ``rediss+cluster://`` URLs.

    :raises ConfigurationError: redis-py (or fakeredis) is not installed, or bad options.
    :raises BackendUnavailableError: the server cannot be reached.
    """
    try:
        from ._backend import RedisBackend

        if url.scheme == "fakeredis":
            import fakeredis  # noqa: F401
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] not in _DRIVERS:
            raise
        extra, hint = (
            ("fakeredis", FAKEREDIS_HINT) if url.scheme == "fakeredis" else ("redis", INSTALL_HINT)
        )
        raise ConfigurationError(
            f"{url.scheme}:// needs the {extra} extra ({exc.name} is not installed): {hint}"
        ) from exc
    return await RedisBackend.open(url)


class _Registry(Protocol):
    def add(self, scheme: str, factory: BackendFactory, *, description: str = "") -> None: ...


@hookimpl
def streamsink_add_backends(registry: _Registry) -> None:
    """Register the Redis schemes."""
    registry.add("redis", open_redis_backend, description="Redis Streams over TCP (pulse layout)")
    registry.add("rediss", open_redis_backend, description="Redis Streams over TLS (pulse layout)")
    registry.add("unix", open_redis_backend, description="Redis Streams over a unix socket")
    registry.add("fakeredis", open_redis_backend, description="in-process fakeredis (tests)")
    registry.add(
        "redis+cluster", open_redis_backend, description="Redis Streams on a Redis Cluster"
    )
    registry.add(
        "rediss+cluster",
        open_redis_backend,
        description="Redis Streams on a Redis Cluster over TLS",
    )
