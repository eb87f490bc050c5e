"""Entry point of the NATS backend: registers ``nats://`` and ``nats+tls://``.

``tls://`` (nats-py's own spelling) is not registered: the scheme registry is shared by every
plugin, and a bare ``tls`` would claim TLS for all of them.

Kept light: nats-py is imported only when one of these URLs is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamsink import BackendRegistry, hookimpl

if TYPE_CHECKING:
    from streamsink.backend import Backend, BackendURL

__all__ = ["SCHEMES", "open_nats_backend", "streamsink_add_backends"]

SCHEMES = ("nats", "nats+tls")


async def open_nats_backend(url: BackendURL) -> Backend:
    """Factory for ``nats://`` and ``nats+tls://`` URLs.

    :raises ConfigurationError: a bad URL or option.
    :raises BackendUnavailableError: the server cannot be reached.
    """
    from ._backend import NatsBackend

    return await NatsBackend.connect(url)


@hookimpl
def streamsink_add_backends(registry: BackendRegistry) -> None:
    """Register the NATS schemes."""
    registry.add("nats", open_nats_backend, description="NATS JetStream")
    registry.add("nats+tls", open_nats_backend, description="NATS JetStream over TLS")
