"""What the installed distribution declares: version, entry points, typing markers, exports."""

from __future__ import annotations

import importlib
from importlib import metadata, resources

import pytest

import streamsink

PUBLIC_PACKAGES = ("streamsink", "streamsink_memory", "streamsink_redis")


def test_version_matches_distribution_metadata() -> None:
    """``streamsink.__version__`` is the installed distribution's version."""
    assert streamsink.__version__ == metadata.version("streamsink")


def test_first_party_entry_points_are_declared() -> None:
    """The distribution declares the memory and redis plugins in the ``streamsink`` group."""
    declared = {
        ep.name: ep.value
        for ep in metadata.distribution("streamsink").entry_points
        if ep.group == "streamsink"
    }
    assert declared == {"memory": "streamsink_memory._plugin", "redis": "streamsink_redis._plugin"}


def test_console_script_is_declared() -> None:
    """The ``streamsink`` command points at the CLI's ``main``."""
    scripts = {
        ep.name: ep.value
        for ep in metadata.distribution("streamsink").entry_points
        if ep.group == "console_scripts"
    }
    assert scripts["streamsink"] == "streamsink._cli:main"


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_public_packages_ship_py_typed(package: str) -> None:
    """Every public package carries the PEP 561 ``py.typed`` marker."""
    assert resources.files(package).joinpath("py.typed").is_file()


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_all_names_exist(package: str) -> None:
    """Every name a public package lists in ``__all__`` can be imported from it."""
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []
    assert len(set(module.__all__)) == len(module.__all__)
