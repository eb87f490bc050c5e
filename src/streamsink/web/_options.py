"""``GatewayOptions``: how the SSE gateway frames, ends, authenticates and shares its streams;
``AuthRequest``: what an ``authorize`` callback is asked about."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs

from .._exceptions import ConfigurationError
from .._options import is_seconds as _is_seconds
from .._streams import shown
from ..backend.options import option_rule as rule

__all__ = ["AuthRequest", "Authorizer", "GatewayOptions"]


@attrs.frozen(kw_only=True)
class AuthRequest:
    """One request for one stream, as ``GatewayOptions.authorize`` sees it.

    - ``stream_id``: the stream asked for (already validated).
    - ``headers``: the request headers, names lower-cased (the last value of a repeated one);
      ``authorization`` is left out when the gateway checks a ``token`` itself.
    - ``query``: the query parameters (the last value of a repeated one), ``token`` left out.
    - ``client``: ``(host, port)`` of the peer as the ASGI server tells it, or None.

    Its ``repr`` shows the stream id, the header names and the client only: never a value that
    could be a credential.
    """

    stream_id: str
    headers: Mapping[str, str] = attrs.field(repr=False)
    query: Mapping[str, str] = attrs.field(repr=False)
    client: tuple[str, int] | None = None

    def __repr__(self) -> str:
        return (
            f"AuthRequest(stream_id={self.stream_id!r}, headers=<{', '.join(sorted(self.headers))}>,"
            f" client={self.client!r})"
        )


Authorizer = Callable[[AuthRequest], "bool | Awaitable[bool]"]
"""``authorize(request) -> bool`` (or an awaitable of it): may this request read this stream?"""


def _is_int(value: object, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _validate_token(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    # The value is never shown: it is a secret.
    if value is None:
        return
    if not isinstance(value, str) or not value:
        raise ConfigurationError(
            f"GatewayOptions.token is invalid: expected a non-empty string or None, got a "
            f"{type(value).__name__}" + (" that is empty" if value == "" else "")
        )
    if not value.isprintable() or not value.isascii() or any(c.isspace() for c in value):
        raise ConfigurationError(
            "GatewayOptions.token is invalid: expected printable ASCII without spaces (it is "
            "sent in an Authorization header or a query parameter)"
        )


def _validate_origins(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    prefix = f"GatewayOptions.cors_origins={shown(value)} is invalid"
    if not isinstance(value, tuple) or not all(isinstance(o, str) for o in value):
        raise ConfigurationError(
            f"{prefix}: expected a tuple of origins such as ('https://a.example',)"
        )
    for origin in value:
        if origin == "*":
            raise ConfigurationError(
                f"{prefix}: '*' is refused; name each origin allowed to read streams "
                "(e.g. 'https://app.example')"
            )
        scheme, sep, rest = origin.partition("://")
        if scheme not in ("http", "https") or not sep or not rest or "/" in rest:
            raise ConfigurationError(
                f"{prefix}: {origin!r} is not an origin; expected scheme://host[:port] with no "
                "path or trailing slash, e.g. 'https://app.example'"
            )


@attrs.frozen(kw_only=True)
class GatewayOptions:
    """Options of an :class:`~streamsink.web.SSEGateway` (and :func:`~streamsink.web.sse_frames`);
    every value is checked when the options are built, and errors name the option.

    - ``heartbeat``: seconds without a frame after which a ``: keep-alive`` comment is sent
      (default 15), so proxies do not close an idle stream.
    - ``retry_ms``: the ``retry:`` hint sent first (default 2000 ms: the browser's reconnect
      delay); None sends none.
    - ``end_on_run_end``: end the response after a ``run_stream_end`` event (default True);
      with ``?run_id=`` only after that run's.
    - ``authorize``: ``authorize(AuthRequest) -> bool`` (or awaitable), asked once per request
      after the token check; False answers 403. None allows every request that passed the token.
    - ``token``: when set, every stream request needs ``Authorization: Bearer <token>`` or
      ``?token=<token>`` (401 otherwise). Compared in constant time, never logged or shown.
    - ``cors_origins``: origins allowed to read streams from a browser page on another origin
      (``Access-Control-Allow-Origin`` is that origin, never ``*``); empty (default): no CORS
      headers, same-origin pages only. ``'*'`` is refused: streams are private data.
    - ``max_stream_id_length``: longest stream id in a URL (default 512, pulse's limit); a
      longer one is answered 414.
    - ``max_entry_id_length``: longest resume id (default 64); a longer one is answered 400.
    - ``buffer``: events read ahead of a slow client, per response (default 64).
    - ``send_server_data``: pass events' ``server_data`` (server-only data, e.g. a
      ``tool_end``'s rows) on to clients (default False: left out of the envelope each client
      gets, which is then written again without it).
    - ``shutdown_timeout``: seconds :meth:`SSEGateway.shutdown` waits for open responses to
      end once cancelled (default 2).
    """

    heartbeat: float = attrs.field(
        default=15.0, validator=rule(_is_seconds, "a positive number of seconds")
    )
    retry_ms: int | None = attrs.field(
        default=2000,
        validator=rule(lambda v: v is None or _is_int(v, 0), "milliseconds >= 0, or None"),
    )
    end_on_run_end: bool = attrs.field(
        default=True, validator=rule(lambda v: isinstance(v, bool), "True or False")
    )
    authorize: Authorizer | None = attrs.field(
        default=None,
        validator=rule(lambda v: v is None or callable(v), "a callable taking an AuthRequest"),
    )
    token: str | None = attrs.field(default=None, repr=False, validator=_validate_token)
    cors_origins: tuple[str, ...] = attrs.field(default=(), validator=_validate_origins)
    max_stream_id_length: int = attrs.field(
        default=512, validator=rule(lambda v: _is_int(v, 1), "an integer >= 1")
    )
    max_entry_id_length: int = attrs.field(
        default=64, validator=rule(lambda v: _is_int(v, 1), "an integer >= 1")
    )
    buffer: int = attrs.field(
        default=64, validator=rule(lambda v: _is_int(v, 1), "an integer >= 1")
    )
    send_server_data: bool = attrs.field(
        default=False, validator=rule(lambda v: type(v) is bool, "True or False")
    )
    shutdown_timeout: float = attrs.field(
        default=2.0, validator=rule(_is_seconds, "a positive number of seconds")
    )
