"""Who may read a stream: the shared token (constant-time, never shown), the ``authorize``
callback, and which browser origins get CORS headers."""

from __future__ import annotations

import hmac
import inspect
from collections.abc import Mapping

from ._options import AuthRequest, GatewayOptions

__all__ = ["authorized", "cors_headers", "preflight_headers", "token_ok"]

_BEARER = "bearer "
#: request headers a cross-origin page may send (EventSource sends Last-Event-ID on reconnects;
#: fetch-based clients send Authorization)
_ALLOWED_HEADERS = b"authorization, last-event-id, cache-control"
_PREFLIGHT_MAX_AGE = b"600"


def token_ok(options: GatewayOptions, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
    """True when no token is set, or the request carries it (``Authorization: Bearer <token>``,
    else ``?token=``). Both candidates are compared in constant time."""
    expected = options.token
    if expected is None:
        return True
    want = expected.encode()
    given = headers.get("authorization", "")
    if given[: len(_BEARER)].lower() == _BEARER and hmac.compare_digest(
        given[len(_BEARER) :].strip().encode("utf-8", "replace"), want
    ):
        return True
    from_query = query.get("token")
    return from_query is not None and hmac.compare_digest(
        from_query.encode("utf-8", "replace"), want
    )


async def authorized(options: GatewayOptions, request: AuthRequest) -> bool:
    """``options.authorize(request)``, awaited when it returns an awaitable; True without one.
    Anything but ``True`` refuses (a callback returning None by mistake denies, never allows)."""
    callback = options.authorize
    if callback is None:
        return True
    verdict = callback(request)
    if inspect.isawaitable(verdict):
        verdict = await verdict
    return verdict is True


def _allowed(options: GatewayOptions, origin: str | None) -> bool:
    return origin is not None and origin in options.cors_origins


def cors_headers(options: GatewayOptions, origin: str | None) -> list[tuple[bytes, bytes]]:
    """The CORS headers of a response to a page of ``origin``: none unless it is listed."""
    if not _allowed(options, origin):
        return [(b"vary", b"origin")] if options.cors_origins else []
    assert origin is not None
    return [(b"access-control-allow-origin", origin.encode()), (b"vary", b"origin")]


def preflight_headers(
    options: GatewayOptions, origin: str | None, method: str | None
) -> list[tuple[bytes, bytes]] | None:
    """The headers of a 204 answer to a CORS preflight, or None to refuse it (an origin not
    listed, or a method other than GET)."""
    if not _allowed(options, origin) or method != "GET":
        return None
    return [
        *cors_headers(options, origin),
        (b"access-control-allow-methods", b"GET"),
        (b"access-control-allow-headers", _ALLOWED_HEADERS),
        (b"access-control-max-age", _PREFLIGHT_MAX_AGE),
    ]
