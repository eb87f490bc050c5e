"""The Redis plugin: registration, lazy imports, and the install hint."""

from __future__ import annotations

import os
import subprocess
import sys

import anyio
import pytest

import streamsink_redis
from streamsink import ConfigurationError
from streamsink._registry import BackendRegistry
from streamsink.backend import BackendURL
from streamsink_redis import RedisBackend, RedisOptions
from streamsink_redis._plugin import (
    FAKEREDIS_HINT,
    INSTALL_HINT,
    open_redis_backend,
    streamsink_add_backends,
)


def _registry() -> BackendRegistry:
    registry = BackendRegistry()
    streamsink_add_backends(registry)
    return registry


def test_registers_every_redis_scheme() -> None:
    """The hook registers redis, rediss, unix, fakeredis and the two cluster schemes, each with
    a description."""
    registry = _registry()
    assert sorted(b.scheme for b in registry) == [
        "fakeredis",
        "redis",
        "redis+cluster",
        "rediss",
        "rediss+cluster",
        "unix",
    ]
    assert all(b.description for b in registry)


@pytest.mark.anyio
async def test_registered_factory_opens_a_backend() -> None:
    """The registered factory opens a working backend from a URL."""
    backend = await _registry().get("fakeredis").factory(BackendURL.parse("fakeredis://"))
    try:
        assert isinstance(backend, RedisBackend)
        assert backend.description == "fakeredis://"
    finally:
        await backend.aclose()


def _hide(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    """Make ``package`` unimportable, and forget the backend modules that imported it."""
    keep = ("streamsink_redis._plugin", "streamsink_redis._options")
    for name in list(sys.modules):
        driver = name == package or name.startswith(f"{package}.")
        backend = name.startswith("streamsink_redis._") and name not in keep
        if driver or backend:
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url", ["redis://localhost", "rediss://h", "unix:///s.sock", "redis+cluster://h1:1,h2:2"]
)
async def test_install_hint_when_redis_is_missing(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """Without redis-py, opening a Redis URL raises ConfigurationError with the pip command."""
    _hide(monkeypatch, "redis")
    with pytest.raises(ConfigurationError, match="needs the redis extra") as info:
        await open_redis_backend(BackendURL.parse(url))
    assert INSTALL_HINT in str(info.value)
    assert "pip install 'streamsink[redis]'" in str(info.value)


@pytest.mark.anyio
async def test_install_hint_when_fakeredis_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without fakeredis, fakeredis:// names its own extra: the redis extra does not bring it."""
    _hide(monkeypatch, "fakeredis")
    with pytest.raises(ConfigurationError, match="fakeredis is not installed") as info:
        await open_redis_backend(BackendURL.parse("fakeredis://"))
    assert "needs the fakeredis extra" in str(info.value)
    assert FAKEREDIS_HINT in str(info.value)
    assert "pip install 'streamsink[fakeredis]'" in str(info.value)


def test_backend_class_import_explains_a_missing_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    """streamsink_redis.RedisBackend without redis-py raises ImportError with the pip command."""
    _hide(monkeypatch, "redis")
    with pytest.raises(ImportError, match=r"pip install 'streamsink\[redis\]'"):
        _ = streamsink_redis.RedisBackend


def test_plugin_import_does_not_import_redis() -> None:
    """Importing the plugin module and the package leaves redis and fakeredis unimported."""
    code = (
        "import sys, streamsink_redis, streamsink_redis._plugin\n"
        "loaded = sorted(m for m in ('redis', 'fakeredis') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_public_names() -> None:
    """The package exports exactly its curated names, the backend class lazily."""
    assert streamsink_redis.__all__ == ["RedisBackend", "RedisOptions"]
    assert streamsink_redis.RedisBackend is RedisBackend
    assert streamsink_redis.RedisOptions is RedisOptions
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = streamsink_redis.Nope


def test_trio_is_refused_with_a_reason() -> None:
    """Opening a Redis backend under trio raises ConfigurationError, not an obscure loop error."""

    async def open_under_trio() -> None:
        await RedisBackend.open("fakeredis://")

    with pytest.raises(ConfigurationError, match="asyncio only"):
        anyio.run(open_under_trio, backend="trio")
