"""``streamsink.web``: streams as server-sent events, for browsers (docs/web.md).

- :class:`SSEGateway`: a plain ASGI app (no framework needed at run time; mount it in
  Starlette or FastAPI, or serve it with uvicorn) with ``GET /streams/{stream id}``, CORS
  preflights and the viewer page.
- :func:`sse_frames`: the same frames as an async iterator, for applications with their own
  routing.
- :class:`GatewayOptions`, :class:`AuthRequest`: heartbeat, retry hint, end on run end, token,
  ``authorize`` callback, CORS origins.
- :class:`ResumeError`: a resume id the gateway refuses (answered 400 before streaming).
"""

from __future__ import annotations

from ._app import SSEGateway
from ._options import Authorizer, AuthRequest, GatewayOptions
from ._resume import ResumeError
from ._stream import sse_frames

__all__ = [
    "SSEGateway",
    "GatewayOptions",
    "AuthRequest",
    "Authorizer",
    "sse_frames",
    "ResumeError",
]
