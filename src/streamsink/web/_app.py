"""``SSEGateway``: a plain ASGI application serving streams as server-sent events.

Routes (under whatever prefix it is mounted at): ``GET /streams/{stream id}`` (the id
percent-encoded, ``/`` as ``%2F`` or as is), ``OPTIONS`` on it for CORS preflights, and the
viewer page at ``GET /`` and ``GET /view/{stream id}``. Each response is one fan-out reader of
the gateway's backend, opened (and its resume checked) before the response starts, so every
refusal is a complete short text answer, never a broken stream.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio

from .._exceptions import BackendUnavailableError, ConfigurationError, StreamsinkError
from .._single_flight import SingleFlight
from .._streams import validate_stream_id
from ..backend import Backend
from ._auth import authorized, cors_headers, preflight_headers, token_ok
from ._frames import FrameSource, comment_frame
from ._options import AuthRequest, GatewayOptions
from ._request import HTTPError, Message, Receive, Request, Scope, Send, html_response
from ._request import plain_response as _plain
from ._resume import ResolvedResume, ResumeError, plan_resume
from ._stream import check_run_id, fan_out_subscriber, open_source

__all__ = ["SSEGateway", "default_viewer"]

log = logging.getLogger("streamsink.web")

_STREAMS = "/streams/"
_VIEW = "/view/"
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_FINAL_SEND_TIMEOUT = 1.0


def default_viewer(stream_id: str | None, *, base_path: str = "") -> str:
    """The viewer page of :mod:`streamsink.web._viewer` (imported on first use).

    :raises ImportError: the page module is not there.
    """
    from ._viewer import viewer_html

    return viewer_html(stream_id, base_path=base_path)


class SSEGateway:
    """An ASGI app (``await gateway(scope, receive, send)``) serving the streams of ``backend``.

    The gateway does not own the backend: close it after :meth:`shutdown`. ``viewer`` makes the
    page of ``GET /`` (``viewer(None)``) and ``GET /view/{id}`` (``viewer(id)``); the default is
    streamsink's viewer page, None turns both routes off (404).
    """

    def __init__(self, backend: Backend, options: GatewayOptions | None = None) -> None:
        if options is not None and not isinstance(options, GatewayOptions):
            raise ConfigurationError(
                f"SSEGateway options must be GatewayOptions, got {type(options).__name__}"
            )
        self.backend = backend
        self.options = options if options is not None else GatewayOptions()
        self.viewer: Callable[[str | None], str] | None = default_viewer
        self._subscriber = fan_out_subscriber(backend, self.options)
        # Clients resuming one stream after one id at once (a mass reconnect) ask the backend once.
        self._resumes: SingleFlight[tuple[str, str], ResolvedResume] = SingleFlight()
        self._responses: set[anyio.CancelScope] = set()
        self._closing = False
        self._drained: anyio.Event | None = None  # made by shutdown(), in the event loop

    @property
    def open_responses(self) -> int:
        """Stream responses open now."""
        return len(self._responses)

    async def shutdown(self) -> None:
        """End every open stream response promptly (its reader is cancelled, a final comment
        sent) and refuse new ones with 503; returns once they ended (or after
        ``options.shutdown_timeout``). Also done on ASGI ``lifespan.shutdown``. Idempotent."""
        self._closing = True
        for scope in list(self._responses):
            scope.cancel()
        if self._responses:
            drained = self._drained = self._drained or anyio.Event()
            with anyio.move_on_after(self.options.shutdown_timeout):
                await drained.wait()
        await self._subscriber.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "http":
            try:
                await self._http(Request.of(scope), receive, send)
            except HTTPError as exc:
                await _plain(send, exc.status, exc.message, exc.headers)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1003})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, request: Request, receive: Receive, send: Send) -> None:
        path, method = request.path, request.method
        if path.startswith(_STREAMS) and len(path) > len(_STREAMS):
            if method == "OPTIONS":
                await self._preflight(request, send)
            elif method == "GET":
                await self._stream(request, path[len(_STREAMS) :], receive, send)
            else:
                raise HTTPError(405, f"{method} is not allowed here", [(b"allow", b"GET, OPTIONS")])
        elif path == "/" or (path.startswith(_VIEW) and len(path) > len(_VIEW)):
            if method != "GET":
                raise HTTPError(405, f"{method} is not allowed here", [(b"allow", b"GET")])
            await self._page(request, None if path == "/" else path[len(_VIEW) :], send)
        else:
            raise HTTPError(404, "not found: streams are at /streams/<stream id>")

    async def _page(self, request: Request, stream_id: str | None, send: Send) -> None:
        viewer = self.viewer
        if viewer is None:
            raise HTTPError(404, "not found: this gateway serves no viewer page")
        if stream_id is not None:
            self._check_stream_id(stream_id)
        try:
            if viewer is default_viewer:
                html = default_viewer(stream_id, base_path=request.base_path)
            else:
                html = viewer(stream_id)
        except ImportError:
            raise HTTPError(404, "not found: the viewer page is not installed") from None
        await html_response(send, html)

    async def _preflight(self, request: Request, send: Send) -> None:
        origin = request.headers.get("origin")
        headers = preflight_headers(
            self.options, origin, request.headers.get("access-control-request-method")
        )
        if headers is None:
            raise HTTPError(403, "CORS preflight refused: origin or method not allowed")
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _check_stream_id(self, stream_id: str) -> None:
        limit = self.options.max_stream_id_length
        if len(stream_id) > limit:
            raise HTTPError(414, f"stream id of {len(stream_id)} characters; at most {limit}")
        try:
            validate_stream_id(stream_id)
        except ConfigurationError as exc:
            raise HTTPError(400, str(exc)) from None

    async def _stream(self, request: Request, stream_id: str, receive: Receive, send: Send) -> None:
        options, query = self.options, request.query
        if self._closing:
            raise HTTPError(503, "the gateway is shutting down")
        self._check_stream_id(stream_id)
        if not token_ok(options, request.headers, query):
            raise HTTPError(401, "a valid token is required", [(b"www-authenticate", b"Bearer")])
        try:
            resume = plan_resume(
                header=request.headers.get("last-event-id"),
                last_event_id=query.get("last_event_id"),
                after=query.get("after"),
                start_from=query.get("from"),
                max_length=options.max_entry_id_length,
            )
            run_id = check_run_id(query.get("run_id"))
        except ResumeError as exc:
            raise HTTPError(400, str(exc)) from None
        try:
            allowed = await authorized(options, self._auth_request(request, stream_id))
        except Exception:
            # The application's bug: logged with its traceback, answered without it.
            log.exception("the authorize callback failed on stream %r", stream_id)
            raise HTTPError(500, "the authorization check failed") from None
        if not allowed:
            raise HTTPError(403, f"not allowed to read stream {stream_id!r}")
        try:
            source = await open_source(
                self._subscriber,
                stream_id,
                resume,
                run_id=run_id,
                options=options,
                resumes=self._resumes,
            )
        except ResumeError as exc:
            raise HTTPError(400, str(exc)) from None
        except BackendUnavailableError as exc:
            log.warning("stream %r: backend unavailable: %s", stream_id, exc)
            raise HTTPError(503, "the event backend is unavailable; retry later") from None
        except StreamsinkError as exc:
            if self._closing:
                raise HTTPError(503, "the gateway is shutting down") from None
            log.warning("stream %r could not be opened: %s", stream_id, exc)
            raise HTTPError(503, "the stream could not be opened; retry later") from None
        try:
            await self._respond(source, request, stream_id, receive, send)
        finally:
            # Not under a shield: the subscription's task group must exit in the scope it was
            # entered in; its own clean-up is shielded and bounded.
            await source.__aexit__(None, None, None)

    def _auth_request(self, request: Request, stream_id: str) -> AuthRequest:
        checked = self.options.token is not None
        headers = {
            k: v for k, v in request.headers.items() if not (checked and k == "authorization")
        }
        query = {k: v for k, v in request.query.items() if k != "token"}
        return AuthRequest(stream_id=stream_id, headers=headers, query=query, client=request.client)

    async def _respond(
        self, source: FrameSource, request: Request, stream_id: str, receive: Receive, send: Send
    ) -> None:
        headers = [*_SSE_HEADERS, *cors_headers(self.options, request.headers.get("origin"))]
        state: dict[str, Any] = {"disconnected": False}
        scope = anyio.CancelScope()
        self._responses.add(scope)
        try:
            with scope:
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_watch_disconnect, receive, tg.cancel_scope, state)
                    while (frame := await source.next_frame()) is not None:
                        await send({"type": "http.response.body", "body": frame, "more_body": True})
                    tg.cancel_scope.cancel()
        finally:
            self._responses.discard(scope)
            if not self._responses and self._drained is not None:
                self._drained.set()
        if state["disconnected"]:
            return
        if source.ended == "failed":
            log.warning("stream %r ended: %s", stream_id, source.error)
        final = b""
        if scope.cancelled_caught:
            final = comment_frame("the server is shutting down")
        elif source.ended == "failed":
            final = comment_frame("the stream is unavailable; reconnect later")
        with anyio.CancelScope(shield=True), anyio.move_on_after(_FINAL_SEND_TIMEOUT):
            await send({"type": "http.response.body", "body": final, "more_body": False})


async def _watch_disconnect(
    receive: Receive, scope: anyio.CancelScope, state: dict[str, Any]
) -> None:
    """Cancel ``scope`` when the client goes away (``http.disconnect``)."""
    while True:
        message: Message = await receive()
        if message.get("type") == "http.disconnect":
            state["disconnected"] = True
            scope.cancel()
            return
