"""The leak checks of ``tests/support/leaks.py`` fail loudly: a pytest run of tests that leak a
task (asyncio and trio), a TCP connection and keys on the private redis-server reports each."""

from __future__ import annotations

import pytest

from tests.support.redis_fixtures import missing_redis
from tests.support.redis_server import find_redis_server

from .support import ROOT

pytest_plugins = ["pytester"]

LEAKY = """
import asyncio
import socket

import pytest
import redis
import trio

KEEP = []


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_leaks_an_asyncio_task(anyio_backend):
    KEEP.append(asyncio.get_running_loop().create_task(asyncio.sleep(60), name="forgotten"))


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_leaks_a_trio_task(anyio_backend):
    trio.lowlevel.spawn_system_task(trio.sleep_forever, name="forgotten-trio")


def test_leaks_a_connection(redis_url):
    KEEP.append(socket.create_connection(("127.0.0.1", int(redis_url.rsplit(":", 1)[1][:-2]))))


def test_leaks_keys(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.set("pulse:stream:not-a-stream", "x")
    client.xadd("elsewhere", {"n": "x"})
    client.close()


def test_clean(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.xadd("pulse:stream:fine", {"n": "x"})
    client.close()
"""


@pytest.mark.redis
@pytest.mark.timeout(60)
def test_leak_checks_report_every_leak(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not find_redis_server():
        missing_redis("no redis-server binary on PATH (the checks start a private one)")
    pytester.makepyfile(test_leaky=LEAKY)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.delenv("STREAMSINK_LEAK_CHECK", raising=False)
    result = pytester.runpytest_subprocess(
        "-p", "tests.support.redis_fixtures", "-p", "tests.support.leaks",
        "-p", "no:cacheprovider",
    )  # fmt: skip
    output = result.stdout.str()
    # the task leaks fail their tests; the connection leak errors its teardown, and the keys
    # (and the still open connection) error the teardown of the last test, at session end
    result.assert_outcomes(passed=3, failed=2, errors=2)
    assert "task(s) still running after the test returned" in output
    assert "'forgotten'" in output
    assert "'forgotten-trio'" in output
    assert "TCP connection(s) opened by test_leaky.py::test_leaks_a_connection" in output
    assert "leftover(s) at the end of the session" in output
    assert "client connection still open" in output
    assert "'pulse:stream:not-a-stream': a string, not a stream" in output
    assert "'elsewhere': a stream outside the prefixes" in output
    assert "'pulse:stream:fine'" not in output
