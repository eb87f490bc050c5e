"""The plugin registry, entry-point loading and URL handling."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import streamsink
from streamsink import BackendNotFoundError, ConfigurationError, hookimpl, open_backend
from streamsink._plugins import get_plugin_manager, get_registry, reset_plugin_manager
from streamsink._registry import BackendRegistry
from streamsink.backend import BackendURL


@pytest.fixture
def fresh_plugins() -> Iterator[None]:
    """Every test builds the plugin manager anew and leaves none of its plugins behind."""
    reset_plugin_manager()
    yield
    reset_plugin_manager()


async def _factory(url: BackendURL) -> Any:
    return url


class ExtraPlugin:
    @hookimpl
    def streamsink_add_backends(self, registry: BackendRegistry) -> None:
        registry.add("extra", _factory, description="a test backend")


class ClashingPlugin:
    @hookimpl
    def streamsink_add_backends(self, registry: BackendRegistry) -> None:
        registry.add("memory", _factory, description="a second memory")


def test_first_party_backends_are_found(fresh_plugins: None) -> None:
    """memory and redis schemes are registered through their entry points."""
    schemes = {b.scheme for b in get_registry()}
    assert {"memory", "redis", "rediss", "unix", "fakeredis"} <= schemes
    assert all(b.description for b in get_registry())


@pytest.mark.anyio
async def test_plugins_registered_by_hand_serve_urls(fresh_plugins: None) -> None:
    """A plugin registered on the manager serves its scheme, with the parsed URL."""
    get_plugin_manager().register(ExtraPlugin())
    url = await open_backend("extra://host:1234/path?a=1")
    assert (url.scheme, url.host, url.port, url.path, url.query) == (
        "extra",
        "host",
        1234,
        "/path",
        (("a", "1"),),
    )


def test_duplicate_schemes_are_refused(fresh_plugins: None) -> None:
    """Two plugins claiming one scheme raise ConfigurationError naming both."""
    get_plugin_manager().register(ClashingPlugin(), name="clasher")
    with pytest.raises(
        ConfigurationError, match=r"registered twice: by plugin 'memory'.*'clasher'"
    ):
        get_registry()


@pytest.mark.anyio
async def test_unknown_scheme_suggests_the_closest(fresh_plugins: None) -> None:
    """An unknown scheme lists the installed ones and suggests the closest."""
    with pytest.raises(BackendNotFoundError, match="did you mean 'memory'") as caught:
        await open_backend("memroy://")
    assert "memory://" in str(caught.value)
    assert isinstance(caught.value, LookupError)
    assert "memory" in caught.value.available


def test_autoload_can_be_disabled(fresh_plugins: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """STREAMSINK_DISABLE_PLUGIN_AUTOLOAD keeps first-party backends and loads no other plugin."""
    monkeypatch.setenv("STREAMSINK_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert "memory" in get_registry()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("memory", "has no scheme"),
        ("://x", "invalid scheme"),
        ("redis://h:99999/0", "bad port"),
        (42, "must be a string"),
    ],
)
def test_malformed_urls_are_configuration_errors(url: Any, message: str) -> None:
    """Malformed backend URLs raise ConfigurationError naming the problem."""
    with pytest.raises(ConfigurationError, match=message):
        BackendURL.parse(url)


def test_url_options_refuse_repeated_keys() -> None:
    """A query key given twice is refused; passwords never appear in messages."""
    url = BackendURL.parse("redis://user:secret@h/0?maxlen=1&maxlen=2")
    with pytest.raises(ConfigurationError, match="given more than once") as caught:
        url.options()
    assert "secret" not in str(caught.value)
    assert str(url) == "redis://***@h/0?maxlen=1&maxlen=2"  # the whole user part is hidden


def test_registry_refuses_bad_registrations() -> None:
    """Schemes must be lower-case names and factories callable."""
    registry = BackendRegistry()
    with pytest.raises(ConfigurationError, match="lower-case"):
        registry.add("Redis", _factory)
    with pytest.raises(ConfigurationError, match="not callable"):
        registry.add("x", "factory")  # type: ignore[arg-type]


def test_hookimpl_is_reexported() -> None:
    """Plugins import the marker from the top-level package."""
    assert streamsink.hookimpl is hookimpl
