"""The plugin vocabulary: pluggy markers and the one, synchronous hook a backend plugin implements.

A plugin is a module named by an entry point in the ``streamsink`` group::

    [project.entry-points.streamsink]
    nats = "streamsink_nats._plugin"

    # streamsink_nats/_plugin.py
    from streamsink import hookimpl

    @hookimpl
    def streamsink_add_backends(registry):
        registry.add("nats", open_nats_backend, description="NATS JetStream")

Hooks never do I/O and never import heavy dependencies: they hand over async factories, and the
factories do the work when a URL with that scheme is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from ._registry import BackendRegistry

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec", "streamsink_add_backends"]

PROJECT_NAME = "streamsink"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def streamsink_add_backends(registry: BackendRegistry) -> None:
    """Register backend factories by URL scheme.

    :param registry: call ``registry.add(scheme, factory, description=...)`` once per scheme.
        ``factory`` is an async callable taking a :class:`streamsink.backend.BackendURL` and
        returning a :class:`streamsink.backend.Backend`. Adding a scheme another plugin already
        added raises :class:`streamsink.ConfigurationError` naming both plugins.

    Called each time the registry is built (on the first URL lookup, and again after plugins
    are registered by hand). Must not block or do I/O.
    """
