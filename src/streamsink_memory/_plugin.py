"""The ``memory://`` scheme: the entry-point plugin and the process-wide brokers it serves.

- ``memory://`` is the process-wide default broker;
- ``memory://<name>`` a separate named broker (names are case-insensitive, as URL hosts are);

so two backends opened on the same URL share streams. Query options: see
:class:`MemoryOptions`. Tests start afresh with :func:`reset_brokers`.
"""

from __future__ import annotations

from typing import Protocol

from streamsink import ConfigurationError
from streamsink.backend import BackendFactory, BackendURL
from streamsink.hookspecs import hookimpl

from ._backend import MemoryBackend
from ._broker import MemoryBroker
from ._options import MemoryOptions

__all__ = ["get_broker", "open_memory_backend", "reset_brokers", "streamsink_add_backends"]

SCHEME = "memory"

_brokers: dict[str, MemoryBroker] = {}


def get_broker(name: str = "") -> MemoryBroker:
    """The process-wide broker called ``name`` (``""``: the default one), created on first use."""
    name = name.lower()
    broker = _brokers.get(name)
    if broker is None:
        broker = _brokers[name] = MemoryBroker()
    return broker


def reset_brokers() -> None:
    """Forget every process-wide broker, the default one included; the next ``memory://`` URL
    gets a fresh, empty broker. Backends already open keep the broker they had."""
    _brokers.clear()


async def open_memory_backend(url: BackendURL | str) -> MemoryBackend:
    """Open a backend on the broker a ``memory://[name][?maxlen=N]`` URL names.

    :raises ConfigurationError: another scheme, a path, port or credentials in the URL, or a
        bad option.
    """
    if isinstance(url, str):
        url = BackendURL.parse(url)
    if url.scheme != SCHEME:
        raise ConfigurationError(f"{url} is not a memory:// URL")
    extras = [
        what
        for what, present in (
            ("a port", url.port is not None),
            ("credentials", url.username is not None or url.password is not None),
            ("a path", url.path not in ("", "/")),
        )
        if present
    ]
    if extras:
        raise ConfigurationError(
            f"memory backend URL {url} must not have {' or '.join(extras)}; "
            "expected memory:// or memory://<broker name>, with options such as ?maxlen=1000"
        )
    options = MemoryOptions.from_url(url)
    name = url.host.lower()
    description = f"{SCHEME}://{name}"
    return MemoryBackend(get_broker(name), options=options, description=description)


class _Registry(Protocol):
    def add(self, scheme: str, factory: BackendFactory, *, description: str = "") -> None: ...


@hookimpl
def streamsink_add_backends(registry: _Registry) -> None:
    """Register ``memory://``."""
    registry.add(
        SCHEME,
        open_memory_backend,
        description="in-process broker with Redis consumer-group semantics (asyncio and trio)",
    )
