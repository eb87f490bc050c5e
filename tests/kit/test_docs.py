"""The examples of the docs pages (getting started, concepts, testing, workers) and of
docs/writing-a-backend.md run, and print what the docs
say they print: the docs describe the kit that ships, not one that might."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)


def blocks(text: str) -> list[tuple[str, str, str]]:
    """Every fenced block, in order: (language, code, the prose between it and the next)."""
    found = list(_BLOCK.finditer(text))
    return [
        (m[1], m[2], text[m.end() : found[i + 1].start() if i + 1 < len(found) else len(text)])
        for i, m in enumerate(found)
    ]


def printing_examples(text: str) -> list[tuple[str, str]]:
    """(code, what it prints) of each python block followed by "prints" and a text block."""
    found = blocks(text)
    return [
        (code, found[i + 1][1])
        for i, (language, code, after) in enumerate(found)
        if language == "python"
        and after.strip() == "prints"
        and i + 1 < len(found)
        and found[i + 1][0] == "text"
    ]


def _run(script: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMSINK_", "PYTEST_"))}
    return subprocess.run(
        [sys.executable, *args, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=cwd,
        env=env,
    )


# How many printing examples each page has at least: a page whose examples vanished fails.
PRINTING_EXAMPLES = {"getting-started.md": 1, "concepts.md": 2, "testing.md": 2, "workers.md": 2}


@pytest.mark.parametrize("doc", sorted(PRINTING_EXAMPLES))
def test_examples_print_what_the_docs_say(doc: str, tmp_path: Path) -> None:
    """Each python block followed by "prints" runs and prints exactly the text block after it."""
    examples = printing_examples((DOCS / doc).read_text())
    assert len(examples) >= PRINTING_EXAMPLES[doc], f"{doc}: the examples this test runs are gone"
    for index, (code, printed) in enumerate(examples):
        script = tmp_path / f"example{index}.py"
        script.write_text(code)
        result = _run(script, cwd=tmp_path)
        assert result.returncode == 0, f"{doc} example {index}:\n{result.stderr}"
        assert result.stdout == printed, f"{doc} example {index}"


def _suite_example() -> str:
    """The test file docs/writing-a-backend.md gives a backend author, as written."""
    for language, code, _ in blocks((DOCS / "writing-a-backend.md").read_text()):
        if language == "python" and code.startswith("# tests/test_backend_kit.py"):
            return code
    raise AssertionError("docs/writing-a-backend.md: the suite's test file is gone")


# What the doc's "your backend" block becomes for memory://: the only lines a reader replaces.
MEMORY_BACKEND = """\
import uuid

from streamsink import open_backend as _open_url
from streamsink_memory import MemoryBackend, MemoryBroker
from streamsink.testing import FakeClock

CAPABILITIES = MemoryBackend().capabilities
BROKER_URL = f"memory://kit-doc-{uuid.uuid4().hex[:8]}"


async def open_backend(*, maxlen=None):
    return await _open_url(f"{BROKER_URL}?maxlen={maxlen or 0}")


async def lose_group(backend, stream_id, group):
    assert backend.broker.drop_group(stream_id, group)


class Target(ParityTarget):
    async def open(self):
        self.clock = FakeClock(1000.0)
        return MemoryBackend(MemoryBroker(clock=self.clock), options=None)

    async def advance(self, backend, stream, group, seconds):
        self.clock.advance(seconds)
"""


def _as_memory(example: str) -> str:
    head, rest = example.split("# -- your backend", 1)
    _, kit = rest.split("# -- the kit", 1)
    return head + MEMORY_BACKEND + "\n\n# -- the kit" + kit


@pytest.mark.parametrize("trio", [False, True], ids=["asyncio-only", "trio-too"])
def test_the_documented_suite_runs_on_a_backend(tmp_path: Path, trio: bool) -> None:
    """The suite file of docs/writing-a-backend.md, with its "your backend" block written for
    memory://, passes in a fresh pytest run outside this repository's conftest: every contract
    and SPI check, the parity model and the FaultyBackend example. Declared asyncio-only
    (``trio=False``), the fixture it documents keeps trio out: nothing fails, nothing is
    skipped for the runtime."""
    code = _as_memory(_suite_example())
    if not trio:
        code = code.replace(
            "CAPABILITIES = MemoryBackend().capabilities",
            "import attrs\nCAPABILITIES = attrs.evolve(MemoryBackend().capabilities, trio=False)",
        )
    script = tmp_path / "test_backend_kit.py"
    script.write_text(code)
    result = _run(script, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert "failed" not in summary, summary
    assert "pin the async runtime" not in result.stdout, "checks ran on trio"
    passed = int(re.search(r"(\d+) passed", summary)[1])  # type: ignore[index]
    assert passed >= (120 if trio else 60), summary
