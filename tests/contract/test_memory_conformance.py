"""The conformance suite on memory:// under asyncio and trio."""

from __future__ import annotations

import pytest

from streamsink import open_backend
from streamsink.backend import Backend
from streamsink.testing import ConformanceCheck, conformance_checks, run_check

pytestmark = pytest.mark.anyio


async def open_memory(*, maxlen: int | None = None) -> Backend:
    return await open_backend("memory://conformance" + (f"?maxlen={maxlen}" if maxlen else ""))


@pytest.mark.parametrize("check", conformance_checks(), ids=str)
async def test_memory_backend(check: ConformanceCheck) -> None:
    """The memory backend keeps every rule of the contract its capabilities cover."""
    backend = await open_memory()
    capabilities = backend.capabilities
    await backend.aclose()
    result = await run_check(check, open_memory, capabilities)
    if result.skipped:
        pytest.skip(result.skipped)
