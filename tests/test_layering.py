"""The dependency rule: core <- backends, backends never import each other, and
``import streamsink`` pulls in no driver and no backend."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
BACKENDS = ("streamsink_memory", "streamsink_redis")
DRIVERS = ("redis", "fakeredis", "hiredis")


def _imports(package: str) -> dict[str, set[str]]:
    """Absolute module names each source file of ``package`` imports (relative ones resolved)."""
    found: dict[str, set[str]] = {}
    for path in sorted((SRC / package).rglob("*.py")):
        relative = path.relative_to(SRC).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts.pop()
        module_package = parts if path.name == "__init__.py" else parts[:-1]
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module_package[: len(module_package) - node.level + 1]
                    names.add(".".join([*base, *([node.module] if node.module else [])]))
                else:
                    names.add(node.module or "")
        found[str(path.relative_to(SRC))] = names
    return found


def _top(module: str) -> str:
    return module.split(".")[0]


def _loaded_after(code: str) -> list[str]:
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    return list(json.loads(result.stdout.splitlines()[-1]))


def test_import_streamsink_loads_no_backend_or_driver() -> None:
    """``import streamsink`` imports neither redis, fakeredis, hiredis nor any streamsink_* module."""
    loaded = _loaded_after("import streamsink")
    offenders = [m for m in loaded if _top(m) in DRIVERS or _top(m).startswith("streamsink_")]
    assert offenders == []


def test_listing_backends_imports_no_driver() -> None:
    """Building the backend registry loads the plugins' hook modules but no Redis driver."""
    loaded = _loaded_after("import streamsink\nstreamsink.get_registry()")
    assert [m for m in loaded if _top(m) in DRIVERS] == []


def test_core_never_imports_a_backend_or_driver() -> None:
    """No source file of the core package imports a backend package or a Redis driver."""
    offenders = {
        path: sorted(m for m in names if _top(m) in DRIVERS or _top(m).startswith("streamsink_"))
        for path, names in _imports("streamsink").items()
    }
    assert {path: names for path, names in offenders.items() if names} == {}


@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_do_not_import_each_other(backend: str) -> None:
    """A backend package imports nothing from another backend package."""
    others = {b for b in BACKENDS if b != backend}
    offenders = {
        path: sorted(m for m in names if _top(m) in others)
        for path, names in _imports(backend).items()
    }
    assert {path: names for path, names in offenders.items() if names} == {}


@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_import_only_public_core_modules(backend: str) -> None:
    """A backend imports the core only through public modules (``streamsink``,
    ``streamsink.backend``, ``streamsink.hookspecs``, ``streamsink.testing``)."""
    offenders = {
        path: sorted(
            m
            for m in names
            if _top(m) == "streamsink" and any(p.startswith("_") for p in m.split(".")[1:])
        )
        for path, names in _imports(backend).items()
    }
    assert {path: names for path, names in offenders.items() if names} == {}
