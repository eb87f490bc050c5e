"""The plugin is built as a third party would: it imports only streamsink's public modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCES = Path(__file__).resolve().parent.parent / "src" / "streamsink_nats"
PUBLIC = {
    "streamsink",
    "streamsink.backend",
    "streamsink.backend.options",
    "streamsink.testing",
    "streamsink.lowlevel",
}
THIS = "streamsink_nats"


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in a source file."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            # `from streamsink import _x` reaches a private module too.
            if node.module.startswith("streamsink"):
                found.extend(
                    (node.lineno, f"{node.module}.{alias.name}")
                    for alias in node.names
                    if alias.name.startswith("_")
                )
    return found


def offences(path: Path) -> list[str]:
    bad = []
    for line, module in imported_modules(path):
        top = module.partition(".")[0]
        if top in ("streamsink_memory", "streamsink_redis"):
            bad.append(f"{path.name}:{line}: {module} (another backend)")
        elif top == "streamsink" and module not in PUBLIC:
            bad.append(f"{path.name}:{line}: {module} (not a public streamsink module)")
    return bad


def test_the_sources_import_only_public_streamsink_names() -> None:
    files = sorted(SOURCES.glob("*.py"))
    assert files, f"no sources under {SOURCES}"
    bad = [offence for path in files for offence in offences(path)]
    assert bad == [], "\n".join(bad)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from streamsink._exceptions import GroupLostError", 1),
        ("import streamsink._consuming", 1),
        ("from streamsink import _registry", 1),
        ("from streamsink_redis import RedisBackend", 1),
        ("from streamsink.backend import GroupLostError", 0),
        ("from streamsink.backend.options import option_rule", 0),
        ("from ._names import encode", 0),
    ],
)
def test_the_scan_catches_private_imports(tmp_path: Path, source: str, expected: int) -> None:
    """The scan itself finds what it must (so the test above can fail)."""
    path = tmp_path / "sample.py"
    path.write_text(source + "\n")
    assert len(offences(path)) == expected
