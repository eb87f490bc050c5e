"""Shared fixtures: async runtimes and plugin isolation."""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.support.redis_fixtures", "tests.support.leaks"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Async tests run on asyncio and on trio unless a module narrows this."""
    return str(request.param)
