"""Opening RedisBackends in tests: a URL with more query options, and a fixture that opens
any number of backends and closes them all after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from urllib.parse import urlencode, urlsplit

from streamsink_redis import RedisBackend

__all__ = ["OpenBackend", "opened_backends", "with_query"]

OpenBackend = Callable[..., Awaitable[RedisBackend]]


def with_query(url: str, **options: object) -> str:
    """``url`` with more query options."""
    if not options:
        return url
    sep = "&" if urlsplit(url).query else "?"
    return url + sep + urlencode({k: str(v) for k, v in options.items()})


@asynccontextmanager
async def opened_backends(url: str) -> AsyncIterator[OpenBackend]:
    """Gives ``open_(**options)``, which opens a RedisBackend on ``url`` with those extra query
    options; every backend it opened is closed on the way out."""
    async with AsyncExitStack() as stack:

        async def open_(**options: object) -> RedisBackend:
            backend = await RedisBackend.open(with_query(url, **options))
            stack.push_async_callback(backend.aclose)
            return backend

        yield open_
