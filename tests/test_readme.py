"""The README's example runs as written and prints what the README says it prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README.read_text(), re.M | re.S)


def test_readme_has_one_python_example() -> None:
    """The README holds exactly one python block, so the test below runs the example."""
    assert len(_blocks("python")) == 1


def test_readme_example_runs(tmp_path: Path) -> None:
    """The python block runs in a fresh interpreter, exits 0 and prints the README's output."""
    (code,) = _blocks("python")
    script = tmp_path / "example.py"
    script.write_text(code)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSINK_")}
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    expected = [
        "assistant_reply {'text': 'Hi!'}",
        "usage {'TotalTokens': 42}",
        "run_stream_end None",
    ]
    assert result.stdout.splitlines() == expected
    (shown,) = _blocks("text")
    assert shown.splitlines() == expected
