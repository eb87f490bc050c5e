"""Test helpers for applications, and the public kit that proves a backend.

For applications: :class:`RecordingSink` (keeps what was sent), :class:`FakeClock` (time that
moves only when the test says so), :class:`FaultyBackend` (failures and delays injected into
any backend), :func:`write_raw_entry` (malformed entries for poison tests), and a pytest plugin
with fixtures of them all (:mod:`streamsink.testing.pytest_plugin`, registered on install).

For backend authors (docs/writing-a-backend.md), three suites, all pytest-free (each check is a
coroutine raising AssertionError) and each check skipped by the backend's declared
:class:`~streamsink.backend.Capabilities`, never by its name:

- the **contract checks** (:func:`conformance_checks`, :func:`run_check`): what an application
  sees through ``StreamSink``/``StreamSubscriber``, one or more per rule of docs/contract.md;
- the **SPI checks** (:func:`spi_checks`, :func:`run_spi_check`): the backend objects called
  directly, as the core calls them;
- the **parity model** (:func:`run_parity`): random sequences of group operations give the
  same deliveries as a reference model of a consumer group (needs ``hypothesis``).

Prove a backend in a few lines (pytest shown)::

    import pytest
    from streamsink.testing import conformance_checks, run_check

    async def open_backend(*, maxlen=None):
        return await MyBackend.connect(maxlen=maxlen)

    @pytest.fixture
    def anyio_backend():
        return "asyncio"          # the runtime your backend runs on (Capabilities.trio)

    @pytest.mark.anyio
    @pytest.mark.parametrize("check", conformance_checks(), ids=str)
    async def test_conformance(check):
        result = await run_check(check, open_backend, MY_CAPABILITIES)
        if result.skipped:
            pytest.skip(result.skipped)

Checks use short timings (:class:`Timing`) so each suite runs in seconds, and clean up what
they create: every stream a check names is destroyed and every backend it opened is closed.
"""

from __future__ import annotations

from ._clock import FakeClock
from ._contract import ConformanceCheck
from ._faulty import FaultyBackend, FaultyCall, FaultyGroupConsumer, FaultyStreamReader, SpiMethod
from ._harness import BackendFactory, Timing
from ._parity import GroupModel, ParityTarget, run_parity
from ._raw import write_raw_entry
from ._recording import RecordingSink
from ._runner import (
    CheckResult,
    conformance_checks,
    run_check,
    run_conformance,
    run_spi_check,
    run_spi_checks,
    spi_checks,
)
from ._spi import GroupLoser, SpiCheck

__all__ = [
    # for applications
    "FakeClock",
    "FaultyBackend",
    "FaultyCall",
    "FaultyGroupConsumer",
    "FaultyStreamReader",
    "RecordingSink",
    "SpiMethod",
    "write_raw_entry",
    # for backend authors: running the suites
    "BackendFactory",
    "CheckResult",
    "Timing",
    "ConformanceCheck",
    "conformance_checks",
    "run_check",
    "run_conformance",
    "SpiCheck",
    "GroupLoser",
    "spi_checks",
    "run_spi_check",
    "run_spi_checks",
    "ParityTarget",
    "GroupModel",
    "run_parity",
]
