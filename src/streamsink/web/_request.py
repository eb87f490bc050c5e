"""An ASGI HTTP scope read once: the path under the mount point, headers, query, client; and the
short text answers the gateway gives to what it refuses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import attrs

__all__ = ["HTTPError", "Request", "Send", "plain_response"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: query parameters the gateway reads; a repeated one is refused (which one would win?)
KNOWN_QUERY = ("token", "last_event_id", "after", "from", "run_id")


class HTTPError(Exception):
    """A request refused with ``status`` and a one-line ``message`` (sent as text/plain)."""

    def __init__(
        self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


@attrs.frozen
class Request:
    """What the gateway uses of a scope. ``path`` is relative to the mount point (``root_path``),
    percent-decoded as the server gives it; ``base_path`` is the mount point, without a trailing
    slash."""

    method: str
    path: str
    base_path: str
    headers: dict[str, str]
    query: dict[str, str]
    client: tuple[str, int] | None

    @classmethod
    def of(cls, scope: Scope) -> Request:
        """Read ``scope``.

        :raises HTTPError: 400 for a query that is not UTF-8, or a known parameter given twice.
        """
        root = str(scope.get("root_path") or "").rstrip("/")
        path = str(scope.get("path") or "/")
        # Starlette's Mount and uvicorn's --root-path keep the full path and set root_path.
        if root and (path == root or path.startswith(root + "/")):
            path = path[len(root) :] or "/"
        headers: dict[str, str] = {}
        for name, value in scope.get("headers") or ():
            headers[bytes(name).decode("latin-1").lower()] = bytes(value).decode("latin-1")
        raw = bytes(scope.get("query_string") or b"")
        try:
            pairs = parse_qsl(
                raw.decode("ascii"), keep_blank_values=True, encoding="utf-8", errors="strict"
            )
        except (UnicodeDecodeError, ValueError):
            raise HTTPError(400, "the query string is not valid percent-encoded UTF-8") from None
        query: dict[str, str] = {}
        for name, value in pairs:
            if name in query and name in KNOWN_QUERY:
                raise HTTPError(400, f"query parameter {name!r} is given more than once")
            query[name] = value
        client = scope.get("client")
        return cls(
            method=str(scope.get("method", "GET")).upper(),
            path=path,
            base_path=root,
            headers=headers,
            query=query,
            client=(str(client[0]), int(client[1])) if client else None,
        )


async def plain_response(
    send: Send, status: int, text: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A complete ``text/plain`` answer of one line."""
    body = (text.splitlines()[0] if text else "").encode("utf-8", "replace") + b"\n"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def html_response(send: Send, html: str) -> None:
    """A complete ``text/html`` page."""
    body = html.encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-cache"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
