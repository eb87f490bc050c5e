"""Run scenarios interleaved: every repeat runs each scenario once, in a rotated order."""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Sequence

import anyio

from ._env import Env
from ._measure import Latency, Rate, Sample
from ._scenarios import Scenario

__all__ = ["run_interleaved"]


def _describe(sample: Sample) -> str:
    if isinstance(sample, Rate):
        return f"{sample.per_second:>11,.0f} ev/s"
    assert isinstance(sample, Latency)
    return f"p50 {sample.p50:>7,.0f} us  p99 {sample.p99:>7,.0f} us"


async def run_interleaved(
    scenarios: Sequence[Scenario], env: Env, *, verbose: bool = True
) -> dict[str, list[Sample]]:
    """``env.config.repeats`` passes over ``scenarios``; pass ``r`` starts at scenario ``r``
    (mod len), so no scenario always runs first or right after the same neighbour."""
    results: dict[str, list[Sample]] = {s.key: [] for s in scenarios}
    repeats = env.config.repeats
    for repeat in range(repeats):
        shift = repeat * len(scenarios) // repeats
        order = [*scenarios[shift:], *scenarios[:shift]]
        for scenario in order:
            gc.collect()
            started = time.perf_counter()
            with anyio.fail_after(120):
                sample = await scenario.run(env)
            results[scenario.key].append(sample)
            if verbose:
                wall = time.perf_counter() - started
                print(
                    f"  [{repeat + 1}/{repeats}] {scenario.key:<32} {_describe(sample)}"
                    f"  ({wall:.1f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    return results
