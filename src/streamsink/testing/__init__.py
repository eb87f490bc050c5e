"""Test helpers for applications and the public conformance suite for backends.

Prove a backend in a few lines (pytest shown; the checks themselves need no pytest)::

    import pytest
    from streamsink.testing import conformance_checks, run_check

    async def open_backend(*, maxlen=None):
        return await MyBackend.connect(maxlen=maxlen)

    @pytest.mark.anyio
    @pytest.mark.parametrize("check", conformance_checks(), ids=str)
    async def test_conformance(check):
        result = await run_check(check, open_backend, MY_CAPABILITIES)
        if result.skipped:
            pytest.skip(result.skipped)

Checks are skipped by the backend's declared :class:`~streamsink.backend.Capabilities`, never
by its name, and use short timings (:class:`Timing`) so the whole suite runs in seconds.
"""

from __future__ import annotations

import anyio
import attrs

from ..backend import Capabilities
from ._checks import CHECKS, ConformanceCheck
from ._harness import BackendFactory, Harness, Timing
from ._recording import RecordingSink

__all__ = [
    "BackendFactory",
    "CheckResult",
    "ConformanceCheck",
    "RecordingSink",
    "Timing",
    "conformance_checks",
    "run_check",
    "run_conformance",
]


def conformance_checks() -> list[ConformanceCheck]:
    """Every contract check, in the order of the rules (docs/contract.md)."""
    return sorted(CHECKS, key=lambda c: int(c.rule))


@attrs.frozen
class CheckResult:
    """The outcome of one check: ``skipped`` holds the reason when it did not run."""

    check: ConformanceCheck
    skipped: str | None = None


async def run_check(
    check: ConformanceCheck,
    factory: BackendFactory,
    capabilities: Capabilities,
    *,
    timing: Timing | None = None,
) -> CheckResult:
    """Run one check against backends from ``factory``.

    :raises AssertionError: the backend breaks the rule (the message says how).
    """
    missing = check.missing(capabilities)
    if missing:
        return CheckResult(check, f"backend lacks capability {', '.join(missing)}")
    timing = timing or Timing()
    harness = Harness(factory, capabilities, timing)
    try:
        with anyio.fail_after(timing.timeout * 3):
            await check.function(harness)
    finally:
        await harness.aclose()
    return CheckResult(check)


async def run_conformance(
    factory: BackendFactory, capabilities: Capabilities, *, timing: Timing | None = None
) -> list[CheckResult]:
    """Run every check in order; the first failure raises AssertionError naming the check."""
    results = []
    for check in conformance_checks():
        try:
            results.append(await run_check(check, factory, capabilities, timing=timing))
        except AssertionError as exc:
            raise AssertionError(
                f"conformance check {check.name} (rule {check.rule}): {exc}"
            ) from exc
    return results
