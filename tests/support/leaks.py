"""Leak checks for the whole suite (a pytest plugin, listed in ``tests/conftest.py``).

Three checks, each failing loudly with the list of leftovers:

1. **Tasks** — every async test (asyncio or trio) ends with no task it started still running.
   The test coroutine is wrapped: the tasks alive before it ran are remembered, and once it
   returns, any other task still alive (after a short grace for tasks that are finishing their
   cancellation) is a task that outlived the ``async with`` that should have ended it.
2. **Connections** — no TCP connection this process opened during a test is still open once the
   test and its fixtures are torn down (checked with psutil on the process's own sockets, so it
   covers every server: the shared private one, per-test ones, anything).
3. **The private redis-server** (session end, before the server stops): no client connection
   other than the checker's, no consumer in any group whose process is gone (consumer names
   ``<host>-<pid>-<hex>`` with a dead pid), and no key that a test did not create on purpose:
   every key must be a *stream* under a stream key prefix the tests use (see
   :data:`STREAM_PREFIXES`). Streams themselves may stay (each test uses its own unique stream
   id), and so may pulse's keep-alive bookkeeping of consumers that still exist in them
   (``map:stream:<s>:sinks:content``, ``map:sink:<group>:keepalive:content``,
   ``streamsink:sink:<group>:consumers``), but nothing else may. A closed streamsink consumer
   that held nothing leaves none of it (its entries go, and a hash left with only pulse's
   ``=rev``/``=kind`` goes while no pulse replica follows it); one closed holding entries stays
   in its group with its entries, as a closed pulse consumer does. What pulse sinks themselves
   leave is accepted: their consumers and keep-alives (pulse's Close deletes neither), and their
   idle-check lease ``sink:<group>:stalelease`` while its 495 ms expiry runs.

Set ``STREAMSINK_LEAK_CHECK=0`` to turn the checks off while debugging something else,
``STREAMSINK_LEAK_CHECK=each`` to run check 3 after every test, which names the test that left
each leftover (slower), or ``STREAMSINK_LEAK_CHECK=strict`` to also count consumers of *this*
process that hold nothing: consumers orphaned when a subscription closed while holding entries
that another consumer claimed since. Nothing deletes those yet (pulse's stale-consumer cleanup has
no counterpart here), so they are reported only in strict mode; see docs/reliability.md.
"""

from __future__ import annotations

import functools
import gc
import inspect
import json
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any

import psutil
import pytest

__all__ = ["STREAM_PREFIXES", "TaskLeakError", "check_redis_server", "redis_leftovers"]

_MODE = os.environ.get("STREAMSINK_LEAK_CHECK", "1").strip().lower()
ENABLED = _MODE not in ("0", "false", "no", "off")
EACH = _MODE == "each"
STRICT = _MODE == "strict"

#: Key prefixes under which tests create streams on purpose: the pulse default, and the custom
#: prefix ``tests/redis/test_wire.py::test_key_prefix_is_configurable`` checks.
STREAM_PREFIXES = ("pulse:stream:", "app:")

#: How long a leftover task or connection may take to go away once the test is over (a task
#: finishing its cancellation, a transport closing on the next loop iteration, a server noticing
#: a closed socket).
GRACE = 1.0

_CONSUMER_NAME = re.compile(r"^(?P<host>.+)-(?P<pid>\d+)-(?P<hex>[0-9a-f]{8})$")


class TaskLeakError(AssertionError):
    """A task outlived the test that started it."""


# -- 1. tasks -------------------------------------------------------------------------------------


def _library() -> str | None:
    """The async library running the current task, if any."""
    import asyncio
    import sys

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return "asyncio"
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            return None
        return "trio"
    return None


def _asyncio_tasks() -> set[Any]:
    import asyncio

    return {task for task in asyncio.all_tasks() if not task.done()}


def _trio_tasks() -> set[Any]:
    import trio

    root = trio.lowlevel.current_root_task()
    found: set[Any] = set()
    stack = [root] if root is not None else []
    while stack:
        task = stack.pop()
        found.add(task)
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return found


def _describe_task(task: Any) -> str:
    if hasattr(task, "get_coro"):  # asyncio
        coro = task.get_coro()
        where = getattr(coro, "__qualname__", repr(coro))
        return f"asyncio task {task.get_name()!r} running {where}"
    return f"trio task {task.name!r}"


async def _leftover_tasks(before: set[Any]) -> set[Any]:
    library = _library()
    if library == "asyncio":
        import asyncio

        current, sleep = _asyncio_tasks, asyncio.sleep
    elif library == "trio":
        import trio

        current, sleep = _trio_tasks, trio.sleep
    else:
        return set()
    deadline = time.monotonic() + GRACE
    while True:
        leftover = current() - before
        if not leftover or time.monotonic() > deadline:
            return leftover
        await sleep(0.01)


def _snapshot_tasks() -> set[Any]:
    library = _library()
    if library == "asyncio":
        return _asyncio_tasks()
    if library == "trio":
        return _trio_tasks()
    return set()


def _check_tasks(test: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(test)
    async def checked(*args: Any, **kwargs: Any) -> Any:
        before = _snapshot_tasks()
        result = await test(*args, **kwargs)
        leftover = await _leftover_tasks(before)
        if leftover:
            names = "\n  ".join(sorted(_describe_task(task) for task in leftover))
            raise TaskLeakError(
                f"{len(leftover)} task(s) still running after the test returned "
                f"(they outlived their `async with`):\n  {names}"
            )
        return result

    return checked


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, object, object]:
    original = pyfuncitem.obj
    wrap = (
        ENABLED
        and "anyio_backend" in pyfuncitem.funcargs
        and inspect.iscoroutinefunction(original)
        and not hasattr(original, "hypothesis")
    )
    if not wrap:
        return (yield)
    pyfuncitem.obj = _check_tasks(original)
    try:
        return (yield)
    finally:
        pyfuncitem.obj = original


# -- 2. connections -------------------------------------------------------------------------------

_OPEN_KEY = pytest.StashKey[frozenset[tuple[Any, ...]]]()


def _tcp_connections() -> frozenset[tuple[Any, ...]]:
    """This process's TCP connections to a peer: (fd, local address, remote address, status)."""
    return frozenset(
        (conn.fd, tuple(conn.laddr), tuple(conn.raddr), conn.status)
        for conn in psutil.Process().net_connections(kind="tcp")
        if conn.raddr
    )


def _new_connections(before: frozenset[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    def new() -> list[tuple[Any, ...]]:
        known = {(fd, laddr, raddr) for fd, laddr, raddr, _ in before}
        return sorted(c for c in _tcp_connections() if c[:3] not in known)

    leftover = new()
    if leftover:
        gc.collect()  # a socket object nobody holds any more closes when collected
        deadline = time.monotonic() + GRACE
        while (leftover := new()) and time.monotonic() < deadline:
            time.sleep(0.02)
    return leftover


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    if ENABLED:
        item.stash[_OPEN_KEY] = _tcp_connections()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    result = yield
    if EACH and _server_port is not None:
        _check_redis_after(item, _server_port)
    before = item.stash.get(_OPEN_KEY, None)
    if before is not None:
        leftover = _new_connections(before)
        if leftover:
            lines = "\n  ".join(
                f"fd {fd}: {laddr[0]}:{laddr[1]} -> {raddr[0]}:{raddr[1]} ({status})"
                for fd, laddr, raddr, status in leftover
            )
            raise AssertionError(
                f"{len(leftover)} TCP connection(s) opened by {item.nodeid} are still open "
                f"after its teardown:\n  {lines}"
            )
    return result


# -- 3. the private redis-server ------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _pairs(reply: Any) -> dict[str, Any]:
    if isinstance(reply, dict):
        return {_text(k): v for k, v in reply.items()}
    items = list(reply)
    return {_text(k): v for k, v in zip(items[0::2], items[1::2], strict=False)}


def redis_leftovers(port: int, *, host: str = "127.0.0.1") -> list[str]:
    """What a redis-server still holds that no test left on purpose (empty: clean).

    See the module docstring for the rules.
    """
    import redis

    problems: list[str] = []
    client = redis.Redis(host=host, port=port, protocol=2, socket_timeout=5)
    try:
        own_id = int(client.execute_command("CLIENT", "ID"))
        # Connections: give closed sockets a moment to be noticed by the server.
        deadline = time.monotonic() + GRACE
        while True:
            others = [
                line
                for line in _text(client.execute_command("CLIENT", "LIST")).splitlines()
                if line and not line.startswith(f"id={own_id} ")
            ]
            if not others or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        problems += [f"client connection still open: {line}" for line in others]

        me = os.getpid()
        dbs = sorted(int(name[2:]) for name in client.info("keyspace") if name.startswith("db"))
        for db in dbs:
            client.execute_command("SELECT", db)
            hashes: list[str] = []
            members: dict[tuple[str, str], set[str]] = {}  # (stream id, group) -> consumers
            for raw_key in client.scan_iter(count=1000):
                key = _text(raw_key)
                where = f"db {db} key {key!r}"
                kind = _text(client.execute_command("TYPE", raw_key))
                if kind == "hash" and _BOOKKEEPING.match(key):
                    hashes.append(key)
                    continue
                if kind == "string" and _LEASE.match(key) and int(client.pttl(raw_key)) > 0:
                    continue  # a pulse sink's idle-check lease: gone within 495 ms
                if kind != "stream":
                    problems.append(f"{where}: a {kind}, not a stream")
                    continue
                if not key.startswith(STREAM_PREFIXES):
                    problems.append(f"{where}: a stream outside the prefixes {STREAM_PREFIXES}")
                    continue
                stream_id = key[len(next(p for p in STREAM_PREFIXES if key.startswith(p))) :]
                for group in client.execute_command("XINFO", "GROUPS", raw_key):
                    group_name = _text(_pairs(group)["name"])
                    consumers = client.execute_command("XINFO", "CONSUMERS", raw_key, group_name)
                    names = members.setdefault((stream_id, group_name), set())
                    for consumer in consumers:
                        info = _pairs(consumer)
                        name = _text(info["name"])
                        names.add(name)
                        pending = int(info["pending"])
                        match = _CONSUMER_NAME.match(name)
                        if not match or match["host"] != socket.gethostname():
                            continue
                        pid = int(match["pid"])
                        if pid != me and not _pid_alive(pid):
                            problems.append(
                                f"{where} group {group_name!r}: consumer {name!r} of dead "
                                f"process {pid} ({pending} pending)"
                            )
                        elif STRICT and pid == me and pending == 0:
                            problems.append(
                                f"{where} group {group_name!r}: consumer {name!r} of this "
                                "process holds nothing but was never deleted (orphaned: closed "
                                "while holding entries that another consumer claimed since)"
                            )
            problems += [
                f"db {db} key {k!r}: {p}" for k in hashes for p in _stale(client, k, members)
            ]
    finally:
        client.close()
    return problems


# pulse's idle-check lease (pulse's streaming/sink.go: SET PX 495 by the lease script).
_LEASE = re.compile(r"^sink:.+:stalelease$")

# pulse's keep-alive bookkeeping (streamsink_redis._keepalive): legitimate while it describes
# consumers that still exist (as a consumer closed holding entries stays, so does its keep-alive).
_BOOKKEEPING = re.compile(
    r"^(map:stream:(?P<stream>.+):sinks:content|map:sink:(?P<sink>.+):keepalive:content"
    r"|streamsink:sink:(?P<group>.+):consumers)$"
)


def _stale(client: Any, key: str, members: dict[tuple[str, str], set[str]]) -> list[str]:
    """What a keep-alive bookkeeping hash holds about consumers that no longer exist."""
    match = _BOOKKEEPING.match(key)
    assert match is not None
    fields = {_text(k): _text(v) for k, v in client.hgetall(key).items()}
    entries = {k: v for k, v in fields.items() if k not in ("=rev", "=kind")}
    if not entries:
        return ["keep-alive bookkeeping with no entry left (a replica was still subscribed?)"]
    found: list[str] = []
    if match["stream"] is not None:  # group -> consumers, on one stream
        for group, value in entries.items():
            gone = set(json.loads(value)) - members.get((match["stream"], group), set())
            found += [f"consumers-map entry of deleted consumer {c!r}" for c in sorted(gone)]
    elif match["sink"] is not None:  # consumer -> keep-alive, for one group on any stream
        alive = {c for (_, g), names in members.items() if g == match["sink"] for c in names}
        found += [f"keep-alive of deleted consumer {c!r}" for c in sorted(set(entries) - alive)]
    else:  # consumer -> streams, for one group
        for consumer, value in entries.items():
            for stream in json.loads(value):
                if consumer not in members.get((stream, match["group"]), set()):
                    found.append(f"registry entry of deleted consumer {consumer!r} on {stream!r}")
    return found


_server_port: int | None = None
_known_problems: set[str] = set()


def _check_redis_after(item: pytest.Item, port: int) -> None:
    """``STREAMSINK_LEAK_CHECK=each``: fail the test that left new leftovers on the server."""
    problems = set(redis_leftovers(port))
    new = sorted(problems - _known_problems)
    _known_problems.update(problems)
    if new:
        lines = "\n  ".join(new)
        raise AssertionError(f"{item.nodeid} left {len(new)} leftover(s) on redis:\n  {lines}")


def check_redis_server(port: int) -> None:
    """Raise AssertionError listing every leftover on the server (see :func:`redis_leftovers`)."""
    problems = redis_leftovers(port)
    if problems:
        lines = "\n  ".join(problems)
        raise AssertionError(
            f"the private redis-server on port {port} holds {len(problems)} leftover(s) at the "
            f"end of the session:\n  {lines}"
        )


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, object, object]:
    result = yield
    if ENABLED and fixturedef.argname == "_private_server" and result is not None:
        global _server_port
        port = _server_port = int(result.port)  # type: ignore[attr-defined]
        # Finalizers run last-in first-out: this one runs before the server is stopped.
        fixturedef.addfinalizer(lambda: check_redis_server(port))
    return result
