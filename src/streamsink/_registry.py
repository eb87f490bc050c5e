"""Scheme -> backend factory table that plugins fill through ``streamsink_add_backends``."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

import attrs

from ._exceptions import BackendNotFoundError, ConfigurationError
from .backend import BackendFactory

__all__ = ["BackendRegistry", "RegisteredBackend"]


@attrs.frozen
class RegisteredBackend:
    """One registered scheme: its factory, a one-line description and the plugin that added it."""

    scheme: str
    factory: BackendFactory
    description: str
    plugin: str


class BackendRegistry:
    """The table passed to ``streamsink_add_backends``. Refuses duplicate schemes."""

    def __init__(self) -> None:
        self._backends: dict[str, RegisteredBackend] = {}
        self._current_plugin = "<unknown>"

    def add(self, scheme: str, factory: BackendFactory, *, description: str = "") -> None:
        """Register ``factory`` for URLs ``scheme://...``.

        :raises ConfigurationError: an invalid scheme, a non-callable factory, or a scheme that
            another plugin already registered (both plugins are named).
        """
        if not isinstance(scheme, str) or not scheme or scheme != scheme.lower() or "://" in scheme:
            raise ConfigurationError(
                f"backend scheme must be a non-empty lower-case name without '://', got {scheme!r}"
            )
        if not callable(factory):
            raise ConfigurationError(f"backend factory for {scheme!r} is not callable: {factory!r}")
        existing = self._backends.get(scheme)
        if existing is not None:
            raise ConfigurationError(
                f"backend scheme {scheme!r} is registered twice: by {existing.plugin} and by "
                f"{self._current_plugin}; uninstall one of them"
            )
        self._backends[scheme] = RegisteredBackend(
            scheme, factory, description, self._current_plugin
        )

    def get(self, scheme: str) -> RegisteredBackend:
        """:raises BackendNotFoundError: the scheme is unknown (with a "did you mean")."""
        try:
            return self._backends[scheme]
        except KeyError:
            pass
        close = difflib.get_close_matches(scheme, list(self._backends), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else None
        raise BackendNotFoundError(scheme, list(self._backends), hint)

    def __iter__(self) -> Iterator[RegisteredBackend]:
        return iter(sorted(self._backends.values(), key=lambda b: b.scheme))

    def __contains__(self, scheme: object) -> bool:
        return scheme in self._backends

    def __len__(self) -> int:
        return len(self._backends)
