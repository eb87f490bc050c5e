"""``streamsink serve``: the SSE gateway (:mod:`streamsink.web`) on uvicorn, and ``--demo``.

Safety rules: a non-loopback address is refused without a token; the token is never printed
(nor is a URL's user part), and uvicorn's access log, which would show ``?token=`` query
strings, is off.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import anyio

from .._runtime import RuntimeStreams, connect
from ._demo import demo_events
from ._exits import EXIT_OK, CommandError
from ._output import Output
from ._text import safe_message

if TYPE_CHECKING:
    import uvicorn

    from ..web import GatewayOptions, SSEGateway

TOKEN_ENV = "STREAMSINK_TOKEN"
DEMO_SESSION = "demo"
DEMO_STREAM = f"session/{DEMO_SESSION}"
DEMO_PACE = 5.0  # the demo run lasts about 0.4 s unscaled: too quick to watch
DEMO_PAUSE = 0.6  # between two runs, in seconds per unit of pace (3 s at the default pace)
MISSING_EXTRA = "streamsink serve needs the web extra: pip install 'streamsink[web]'"

__all__ = ["DEMO_PACE", "DEMO_STREAM", "TOKEN_ENV", "is_loopback", "run_serve", "token_from"]


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback one (``127.0.0.0/8``, ``::1``).

    A wildcard (``0.0.0.0``, ``::``, ``""``) or a name that does not resolve is not.
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, opened here so that a taken port is one clear line
    (uvicorn would log it and exit) and port 0 tells which port it got."""
    bare = host.strip("[]")
    try:
        infos = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise CommandError(f"--host {host!r}: cannot resolve it ({exc.strerror or exc})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        # A restart on the same port must not wait for the old connections' TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def _origin(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = host if host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


async def _play_demo(streams: RuntimeStreams, pace: float) -> None:
    """Publish the demo run on :data:`DEMO_STREAM` again and again, its delays scaled by
    ``pace``, with a pause between runs."""
    while True:
        run_id = f"run-{secrets.token_hex(4)}"
        for delay, event in demo_events(run_id, DEMO_SESSION):
            await anyio.sleep(delay * pace)
            await streams.sink.send(event)
        await anyio.sleep(max(0.05, DEMO_PAUSE * pace))


def _load_web() -> tuple[type[SSEGateway], type[GatewayOptions]]:
    try:
        import uvicorn  # noqa: F401 - the web extra's server, imported again where used

        from ..web import GatewayOptions, SSEGateway
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] == "uvicorn":
            raise CommandError(MISSING_EXTRA) from None
        raise
    return SSEGateway, GatewayOptions


async def run_serve(
    url: str,
    out: Output,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    cors_origins: Sequence[str] = (),
    heartbeat: float | None = None,
    demo: bool = False,
    pace: float = DEMO_PACE,
) -> int:
    """Serve the SSE gateway for the backend at ``url`` until interrupted.

    :raises CommandError: no ``web`` extra, a non-loopback ``host`` without a token, a
        ``memory://`` URL without ``demo``, or a port that cannot be listened on.
    :raises StreamsinkError: the backend could not be opened, or bad gateway options.
    """
    gateway_class, options_class = _load_web()
    token = token or None
    if token is None and not is_loopback(host):
        raise CommandError(
            f"refusing to serve on {host} without a token: anyone who can reach it could read "
            f"every stream; set ${TOKEN_ENV} (or --token), or bind a loopback address"
        )
    if url.partition(":")[0].lower() == "memory" and not demo:
        raise CommandError(
            "memory:// streams live in one process: nothing else can publish to this one; "
            "give a shared backend (--url redis://...), or try --demo"
        )
    options: dict[str, Any] = {"token": token, "cors_origins": tuple(cors_origins)}
    if heartbeat is not None:
        options["heartbeat"] = heartbeat
    gateway_options = options_class(**options)
    sock = _listen(host, port)
    try:
        async with connect(url) as streams:
            gateway = gateway_class(streams.backend, gateway_options)
            server = _server(gateway)
            origin = _origin(sock, host)
            description = safe_message(streams.backend.description)
            out.write(f"streamsink serve on {description}: {origin}/\n", "bold")
            out.write(f"  streams: {origin}/streams/<url-encoded stream id>\n")
            out.write(f"  viewer:  {origin}/view/<url-encoded stream id>\n")
            if token is not None:
                out.write("  a token is required: ?token=... or Authorization: Bearer ...\n")
            async with anyio.create_task_group() as tg:
                if demo:
                    tg.start_soon(_play_demo, streams, pace)
                    # The page waits for the next run (from=newest) and follows run after run.
                    page = f"{origin}/view/{quote(DEMO_STREAM, safe='')}?from=newest&follow=1"
                    if token is not None:
                        page += "&token=<your token>"
                    out.write(
                        f"demo: a simulated agent run every few seconds on {DEMO_STREAM}\n"
                        f"open {page} in a browser (Ctrl-C ends)\n",
                        "bold",
                    )
                await server.serve(sockets=[sock])
                tg.cancel_scope.cancel()
    finally:
        sock.close()
    return EXIT_OK


def _server(gateway: SSEGateway) -> uvicorn.Server:
    """A uvicorn server that ends the gateway's responses first when it shuts down: uvicorn
    waits for open responses before its lifespan shutdown, and an SSE response never ends by
    itself."""

    import uvicorn

    class GatewayServer(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            await gateway.shutdown()
            await super().shutdown(sockets)

    config = uvicorn.Config(
        gateway,
        lifespan="on",
        # The access log shows query strings, where browsers carry the token (?token=).
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=3,
    )
    return GatewayServer(config)


def token_from(argument: str | None) -> str | None:
    """The token: ``--token``, else ``$STREAMSINK_TOKEN``; empty counts as none."""
    return argument or os.environ.get(TOKEN_ENV) or None
