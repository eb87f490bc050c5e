"""The plugin manager, built lazily on the first lookup and cached; and ``open_backend``."""

from __future__ import annotations

import logging
import os
import threading
from importlib import metadata

import pluggy

from . import hookspecs
from ._exceptions import BackendNotFoundError
from ._registry import BackendRegistry
from .backend import Backend, BackendURL

__all__ = [
    "AUTOLOAD_ENV",
    "get_plugin_manager",
    "get_registry",
    "open_backend",
    "reset_plugin_manager",
]

AUTOLOAD_ENV = "STREAMSINK_DISABLE_PLUGIN_AUTOLOAD"
_FIRST_PARTY = "streamsink"
log = logging.getLogger("streamsink")

_lock = threading.Lock()
_manager: pluggy.PluginManager | None = None
_distributions: dict[str, str] = {}  # plugin name -> "dist version", for error messages
_load_failures: dict[str, str] = {}  # entry-point name -> why it failed to load


def _autoload_disabled() -> bool:
    return os.environ.get(AUTOLOAD_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _load_entry_points(pm: pluggy.PluginManager, *, first_party_only: bool) -> None:
    # Our own distribution first, so its plugins keep their plain names whatever sys.path says.
    dists = sorted(
        metadata.distributions(), key=lambda d: (d.metadata["Name"] or "").lower() != _FIRST_PARTY
    )
    for dist in dists:
        dist_name = dist.metadata["Name"] or ""
        if first_party_only and dist_name.lower() != _FIRST_PARTY:
            continue
        for ep in dist.entry_points:
            if ep.group != hookspecs.PROJECT_NAME or pm.is_blocked(ep.name):
                continue
            name = ep.name
            registered = pm.get_plugin(name)
            if registered is not None:
                if _distributions.get(name, "").split(" ")[0] == dist_name:
                    continue  # the same distribution seen twice on sys.path
                # Another distribution uses this entry-point name: load it under a distinct name,
                # so a scheme both claim is reported as a clash instead of one hiding the other.
                name = f"{ep.name}@{dist_name}"
            try:
                plugin = ep.load()
            except Exception as exc:
                # One broken plugin must not take every other backend down with it: remember
                # why, warn, and say so when someone asks for a scheme nobody serves.
                reason = f"plugin {ep.name!r} from {dist_name} failed to load: {exc!r}"
                _load_failures[name] = reason
                log.warning("streamsink %s", reason)
                continue
            pm.register(plugin, name=name)
            _distributions[name] = f"{dist_name} {dist.version}"


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, built on first use.

    Loads every entry point of the ``streamsink`` group, or, when ``STREAMSINK_DISABLE_PLUGIN_AUTOLOAD``
    is set, only the first-party ones (``memory``, ``redis``), so tests register the rest by hand
    with ``get_plugin_manager().register(plugin)``.
    """
    global _manager
    with _lock:
        if _manager is None:
            pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
            pm.add_hookspecs(hookspecs)
            _load_entry_points(pm, first_party_only=_autoload_disabled())
            pm.check_pending()
            _manager = pm
        return _manager


def reset_plugin_manager() -> None:
    """Forget the cached manager; the next lookup builds it again (for tests)."""
    global _manager
    with _lock:
        _manager = None
        _load_failures.clear()
        _distributions.clear()


def get_registry() -> BackendRegistry:
    """A registry filled by every registered plugin's ``streamsink_add_backends``.

    :raises ConfigurationError: two plugins register the same scheme.
    """
    pm = get_plugin_manager()
    registry = BackendRegistry()
    hook = pm.hook.streamsink_add_backends
    for impl in hook.get_hookimpls():  # registration order, for stable messages
        registry._current_plugin = _describe(impl.plugin_name)
        impl.function(registry=registry)
    return registry


def _describe(name: str) -> str:
    dist = _distributions.get(name)
    return f"plugin {name!r} ({dist})" if dist else f"plugin {name!r}"


async def open_backend(url: str | BackendURL) -> Backend:
    """Open the backend a URL names, through the plugin registry.

    :raises ConfigurationError: a malformed URL or options the backend refuses.
    :raises BackendNotFoundError: no installed backend serves the scheme.
    :raises BackendUnavailableError: the backend cannot be reached.
    """
    parsed = url if isinstance(url, BackendURL) else BackendURL.parse(url)
    try:
        registered = get_registry().get(parsed.scheme)
    except BackendNotFoundError as exc:
        if not _load_failures:
            raise
        hints = [h for h in (exc.hint, *_load_failures.values()) if h]
        raise BackendNotFoundError(exc.scheme, exc.available, "; ".join(hints)) from None
    return await registered.factory(parsed)
