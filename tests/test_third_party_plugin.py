"""A backend shipped as its own distribution works through the ``streamsink`` entry-point group,
with no change to streamsink; clashes, opt-outs and typos are reported clearly.

The throw-away distributions are built with hatchling (no build isolation, no index: offline) and
installed with ``pip --target`` into a temporary folder that only the subprocesses here put on
their path, so the project's virtualenv is never changed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import streamsink

PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "{dist}"
version = "0.1"

[project.entry-points.streamsink]
{entry_point} = "{package}._plugin"

[tool.hatch.build.targets.wheel]
packages = ["{package}"]
"""

ECHO_PLUGIN = '''\
"""A third-party backend for echoscheme://, built on streamsink_memory's public API."""

from streamsink import hookimpl
from streamsink_memory import open_memory_backend


async def open_echo_backend(url):
    return await open_memory_backend("memory://echo-" + (url.host or "default"))


@hookimpl
def streamsink_add_backends(registry):
    registry.add("echoscheme", open_echo_backend, description="echo backend for tests")
'''

DUPLICATE_PLUGIN = '''\
"""A third-party plugin that claims a scheme streamsink already serves."""

from streamsink import hookimpl
from streamsink_memory import open_memory_backend


@hookimpl
def streamsink_add_backends(registry):
    registry.add("memory", open_memory_backend, description="a second memory://")
'''


def _install(root: Path, dist: str, package: str, entry_point: str, plugin: str) -> Path:
    """Build ``dist`` from source in ``root`` and install it into ``root/target``."""
    source = root / "src"
    (source / package).mkdir(parents=True)
    (source / "pyproject.toml").write_text(
        PYPROJECT.format(dist=dist, package=package, entry_point=entry_point)
    )
    (source / package / "__init__.py").write_text("")
    (source / package / "_plugin.py").write_text(plugin)
    target = root / "target"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-build-isolation",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=180,
    )
    return target


@pytest.fixture(scope="module")
def echo_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder holding the installed ``sstest-echo-backend`` distribution."""
    return _install(
        tmp_path_factory.mktemp("echo"),
        "sstest-echo-backend",
        "sstest_echo_backend",
        "echoscheme",
        ECHO_PLUGIN,
    )


@pytest.fixture(scope="module")
def duplicate_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder holding ``sstest-dup-backend``, whose plugin registers ``memory`` again."""
    return _install(
        tmp_path_factory.mktemp("dup"),
        "sstest-dup-backend",
        "sstest_dup_backend",
        "memory_again",
        DUPLICATE_PLUGIN,
    )


def _run(code: str, *paths: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with ``paths`` first on its import path."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSINK_")}
    environ["PYTHONPATH"] = os.pathsep.join(
        [*map(str, paths), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


ROUND_TRIP = """
    import anyio
    import streamsink
    from streamsink import StartPosition, StreamEvent


    async def main():
        async with streamsink.connect("echoscheme://") as streams:
            subscriber = streams.new_subscriber(group="g", start=StartPosition.oldest())
            sent = await streams.sink.send(StreamEvent("tool_start", "run-1", "s-1", payload={"n": 1}))
            async with subscriber.subscribe(sent.stream_id) as events:
                async for event in events:
                    print(event.type, event.payload, event.entry_id == sent.entry_id)
                    break
            print(streams.backend.description)
        registered = {b.scheme: b.plugin for b in streamsink.get_registry()}
        print(registered["echoscheme"])


    anyio.run(main)
"""


def test_third_party_backend_round_trip(echo_target: Path) -> None:
    """An installed third-party plugin serves its scheme: an event sent is received back."""
    result = _run(ROUND_TRIP, echo_target)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "tool_start {'n': 1} True"
    assert lines[1].startswith("memory://echo-default")
    assert lines[2] == "plugin 'echoscheme' (sstest-echo-backend 0.1)"


def test_third_party_backend_in_the_cli(echo_target: Path) -> None:
    """``streamsink backends`` lists the third-party scheme and ``demo`` runs on it."""
    listed = _run(
        "from streamsink._cli import main; raise SystemExit(main(['backends']))", echo_target
    )
    assert listed.returncode == 0, listed.stderr
    assert any(line.startswith("echoscheme://") for line in listed.stdout.splitlines())
    demo = _run(
        "from streamsink._cli import main; raise SystemExit(main(['demo', '--pace', '0']))",
        echo_target,
        STREAMSINK_URL="echoscheme://cli",
    )
    assert demo.returncode == 0, demo.stderr
    assert "run_stream_end" in demo.stdout


def test_duplicate_scheme_names_both_plugins(duplicate_target: Path) -> None:
    """A second plugin registering ``memory`` fails the lookup, naming both plugins."""
    result = _run(
        """
        import streamsink
        try:
            streamsink.get_registry()
        except streamsink.ConfigurationError as exc:
            print(exc)
        else:
            print("no error")
        """,
        duplicate_target,
    )
    assert result.returncode == 0, result.stderr
    message = result.stdout.strip()
    assert "'memory' is registered twice" in message
    assert f"plugin 'memory' (streamsink {streamsink.__version__})" in message
    assert "plugin 'memory_again' (sstest-dup-backend 0.1)" in message


@pytest.fixture(scope="module")
def shadow_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder holding ``sstest-shadow``, whose entry point is also called ``memory``."""
    return _install(
        tmp_path_factory.mktemp("shadow"),
        "sstest-shadow",
        "sstest_shadow",
        "memory",
        DUPLICATE_PLUGIN,
    )


def test_entry_point_name_clash_is_reported(shadow_target: Path) -> None:
    """A third-party entry point named like a first-party one cannot silently replace it."""
    result = _run(
        """
        import streamsink
        try:
            registry = streamsink.get_registry()
        except streamsink.ConfigurationError as exc:
            print(exc)
        else:
            print("memory:// served by", registry.get("memory").plugin)
        """,
        shadow_target,
    )
    assert result.returncode == 0, result.stderr
    assert "sstest-shadow" in result.stdout
    assert f"streamsink {streamsink.__version__}" in result.stdout


def test_duplicate_scheme_in_the_cli(duplicate_target: Path) -> None:
    """The command reports the clash as one line on stderr and exits 2."""
    result = _run(
        "from streamsink._cli import main; raise SystemExit(main(['backends']))", duplicate_target
    )
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "registered twice" in result.stderr


DISABLED = """
    import anyio
    import streamsink


    async def main():
        try:
            await streamsink.open_backend("echoscheme://")
        except streamsink.BackendNotFoundError as exc:
            print("echoscheme:", type(exc).__name__)
        async with streamsink.connect("memory://") as streams:
            print("memory:", streams.backend.description)
        import sstest_echo_backend._plugin as echo
        streamsink.get_plugin_manager().register(echo)
        backend = await streamsink.open_backend("echoscheme://by-hand")
        print("by hand:", backend.description)
        await backend.aclose()


    anyio.run(main)
"""


def test_autoload_can_be_disabled(echo_target: Path) -> None:
    """With STREAMSINK_DISABLE_PLUGIN_AUTOLOAD=1 third-party plugins wait to be registered by
    hand, while the first-party memory:// keeps working."""
    result = _run(DISABLED, echo_target, STREAMSINK_DISABLE_PLUGIN_AUTOLOAD="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "echoscheme: BackendNotFoundError",
        "memory: memory://",
        "by hand: memory://echo-by-hand",
    ]


@pytest.mark.anyio
async def test_unknown_scheme_suggests_the_close_one() -> None:
    """A typo in the scheme raises BackendNotFoundError with a "did you mean"."""
    with pytest.raises(streamsink.BackendNotFoundError, match="did you mean 'memory'") as caught:
        await streamsink.open_backend("memroy://")
    assert caught.value.scheme == "memroy"
    assert "memory" in caught.value.available
    assert isinstance(caught.value, LookupError)
