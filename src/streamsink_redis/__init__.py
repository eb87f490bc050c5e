"""Redis Streams backend for streamsink (``redis://``, ``rediss://``, ``unix://``, ``fakeredis://``,
and Redis Cluster: ``redis+cluster://``, ``rediss+cluster://``).

Entries are laid out as goa.design/pulse lays them out (key ``pulse:stream:<stream id>``, fields
``n``, ``p``, ``t``), so Python and Go services can share streams. Needs the ``redis`` extra:
``pip install 'streamsink[redis]'``. Importing this package does not import redis; the backend
class is loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._options import RedisOptions

if TYPE_CHECKING:
    from ._backend import RedisBackend

__all__ = ["RedisBackend", "RedisOptions"]


def __getattr__(name: str) -> Any:
    if name == "RedisBackend":
        try:
            from ._backend import RedisBackend
        except ImportError as exc:
            if (exc.name or "").partition(".")[0] not in ("redis", "hiredis"):
                raise
            raise ImportError(
                f"streamsink_redis.RedisBackend needs redis-py: pip install 'streamsink[redis]' "
                f"({exc.name} is not installed)",
                name=exc.name,
            ) from exc
        return RedisBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
