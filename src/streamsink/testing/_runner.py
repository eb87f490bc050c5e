"""Running checks: one at a time (a pytest parametrization) or all in order, without pytest."""

from __future__ import annotations

import contextlib
import sys

import anyio
import attrs

from ..backend import Capabilities
from . import (
    _spi_declared,
    _spi_groups,
    _spi_inspect,
    _spi_lifecycle,
    _spi_operate,
    _spi_positions,
    _spi_settling,
    _spi_shared,
    _spi_streams,
    _spi_summary,
)
from ._contract import CHECKS, ConformanceCheck
from ._harness import BackendFactory, Harness, Timing
from ._spi import SPI_CHECKS, GroupLoser, SpiCheck, SpiHarness

__all__ = [
    "CheckResult",
    "conformance_checks",
    "run_check",
    "run_conformance",
    "run_spi_check",
    "run_spi_checks",
    "spi_checks",
]


def _wrong_runtime(capabilities: Capabilities) -> str | None:
    """Why the check cannot run here: under trio, on a backend that does not declare trio."""
    trio = sys.modules.get("trio")  # trio is running only if it was imported
    if trio is not None and trio.lowlevel.in_trio_run() and not capabilities.trio:
        return (
            "backend does not declare Capabilities.trio and this check runs under trio: pin the "
            "async runtime (an anyio_backend fixture returning 'asyncio')"
        )
    return None


def conformance_checks() -> list[ConformanceCheck]:
    """Every contract check, in the order of the rules (docs/contract.md)."""
    return sorted(CHECKS, key=lambda c: int(c.rule))


#: The modules that register the SPI checks (importing them does), in the order spi_checks()
#: lists their checks.
_SPI_MODULES = tuple(
    module.__name__
    for module in (
        _spi_groups,
        _spi_settling,
        _spi_positions,
        _spi_streams,
        _spi_lifecycle,
        _spi_shared,
        _spi_declared,
        _spi_inspect,
        _spi_operate,
        _spi_summary,
    )
)


def spi_checks() -> list[SpiCheck]:
    """Every SPI check: consumer groups first, then appends, readers, blocking, closing,
    destroying and lost groups, shared reads, then what a backend may declare (grace at open,
    entry times, terminate, stream info, operations, pending summaries). Names are unique and
    stable (use them as test ids)."""
    return sorted(SPI_CHECKS, key=lambda check: _SPI_MODULES.index(check.function.__module__))


@attrs.frozen
class CheckResult:
    """The outcome of one check: ``skipped`` holds the reason when it did not run."""

    check: ConformanceCheck | SpiCheck
    skipped: str | None = None


async def _run(harness: Harness, check: ConformanceCheck | SpiCheck, timing: Timing) -> None:
    """Run the check, then clean up: destroy the streams it named, close its backends. A failing
    cleanup fails a passing check; it never hides the error of a failing one."""
    try:
        with anyio.fail_after(timing.timeout * 3):
            await check.function(harness)  # type: ignore[arg-type]
    except BaseException:
        with contextlib.suppress(Exception):  # the check's own error is the one to see
            await harness.aclose()
        raise
    try:
        await harness.aclose()
    except Exception as exc:
        raise AssertionError(f"cleaning up after {check.name} failed: {exc!r}") from exc


async def run_check(
    check: ConformanceCheck,
    factory: BackendFactory,
    capabilities: Capabilities,
    *,
    timing: Timing | None = None,
) -> CheckResult:
    """Run one contract check against backends from ``factory``, then destroy the streams it
    used and close the backends it opened.

    :returns: a :class:`CheckResult`, ``skipped`` set (and nothing run) when ``capabilities``
        lack a flag the check requires, or it is called under trio and ``capabilities.trio``
        is False.
    :raises AssertionError: the backend breaks the rule (the message says how), or cleaning up
        after a passing check failed.
    :raises TimeoutError: the check took longer than three times ``timing.timeout``.
    """
    missing = check.missing(capabilities)
    if missing:
        return CheckResult(check, f"backend lacks capability {', '.join(missing)}")
    if wrong := _wrong_runtime(capabilities):
        return CheckResult(check, wrong)
    timing = timing or Timing()
    await _run(Harness(factory, capabilities, timing), check, timing)
    return CheckResult(check)


async def run_conformance(
    factory: BackendFactory, capabilities: Capabilities, *, timing: Timing | None = None
) -> list[CheckResult]:
    """Run every contract check in order.

    :raises AssertionError: the first failure, naming the check and its rule.
    """
    results = []
    for check in conformance_checks():
        try:
            results.append(await run_check(check, factory, capabilities, timing=timing))
        except AssertionError as exc:
            raise AssertionError(
                f"conformance check {check.name} (rule {check.rule}): {exc}"
            ) from exc
    return results


async def run_spi_check(
    check: SpiCheck,
    factory: BackendFactory,
    capabilities: Capabilities,
    *,
    timing: Timing | None = None,
    lose_group: GroupLoser | None = None,
) -> CheckResult:
    """Run one SPI check on backend objects from ``factory``, then destroy the streams it used
    and close the backends it opened.

    :param lose_group: ``await lose_group(backend, stream_id, group)`` makes a group vanish
        behind the backend's back (as a broker restart without persistence would); the lost-group
        checks are skipped without it.
    :returns: a :class:`CheckResult`, ``skipped`` set (and nothing run) when ``capabilities``
        lack a flag the check requires, a hook it needs was not given, or it is called under
        trio and ``capabilities.trio`` is False.
    :raises AssertionError: the backend breaks the SPI (the message says how), or cleaning up
        after a passing check failed.
    :raises TimeoutError: the check took longer than three times ``timing.timeout``.
    """
    missing = check.missing(capabilities)
    if missing:
        return CheckResult(check, f"backend lacks capability {', '.join(missing)}")
    if "lose_group" in check.hooks and lose_group is None:
        return CheckResult(check, "no lose_group hook given")
    if wrong := _wrong_runtime(capabilities):
        return CheckResult(check, wrong)
    timing = timing or Timing()
    harness = SpiHarness(factory, capabilities, timing, lose_group=lose_group)
    await _run(harness, check, timing)
    return CheckResult(check)


async def run_spi_checks(
    factory: BackendFactory,
    capabilities: Capabilities,
    *,
    timing: Timing | None = None,
    lose_group: GroupLoser | None = None,
) -> list[CheckResult]:
    """Run every SPI check in order.

    :raises AssertionError: the first failure, naming the check.
    """
    results = []
    for check in spi_checks():
        try:
            results.append(
                await run_spi_check(
                    check, factory, capabilities, timing=timing, lose_group=lose_group
                )
            )
        except AssertionError as exc:
            raise AssertionError(f"SPI check {check.name}: {exc}") from exc
    return results
