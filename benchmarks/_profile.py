"""Profile one scenario with pyinstrument: ``python -m benchmarks --profile <key>``."""

from __future__ import annotations

import sys
from pathlib import Path

from ._env import Env
from ._scenarios import Scenario

__all__ = ["profile"]


async def profile(scenario: Scenario, env: Env, out_dir: Path) -> Path:
    """Run ``scenario`` once unprofiled (warm-up), once under pyinstrument; write the call tree
    as text and HTML to ``out_dir`` and print the text."""
    from pyinstrument import Profiler

    await scenario.run(env)
    profiler = Profiler(interval=0.0005, async_mode="enabled")
    with profiler:
        sample = await scenario.run(env)
    stem = scenario.key.replace("/", "_")
    text = profiler.output_text(unicode=True, color=False, show_all=False)
    html = out_dir / f"{stem}.html"
    _write(out_dir, {f"{stem}.txt": text, html.name: profiler.output_html()})
    print(text)
    print(f"{scenario.key}: {sample}", file=sys.stderr)
    return html


def _write(directory: Path, files: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
