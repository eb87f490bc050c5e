"""Publishing is retry-safe: a send whose XADD reply was lost is resolved to the entry already
written (one entry, the id it got) or reported, never written twice (docs/reliability.md).

Each scenario sends well over 1,000 events through a ``StreamSink`` on a private redis-server
with a short ``socket_timeout`` while faults are injected over and over: sequential sends,
concurrent sends (coalesced into one append, so batches are cut too) and ``send_many`` batches,
on two streams. Then both streams are read back and every send is accounted for:

- **duplicates**: event sequence numbers found more than once in the streams (must be 0);
- **lost**: sends that returned whose event is not in the stream exactly once under the id they
  returned (must be 0);
- **raised**: sends that raised (counted; such an event may or may not be written, once at most).

The scenarios: a reply cut halfway (proxy), a connection stalled longer than ``socket_timeout``
that delivers its bytes afterwards (proxy), replies black-holed (proxy), and ``CLIENT KILL TYPE
normal`` every 200 ms from a second client (no proxy).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import orjson
import pytest
import redis.asyncio as aioredis

from streamsink import StreamEvent, StreamSink, StreamsinkError
from streamsink_redis import RedisBackend
from tests.support.redis_server import RedisServer
from tests.support.tcp_proxy import TcpProxy

from .support import record_figures

pytestmark = [pytest.mark.anyio, pytest.mark.redis, pytest.mark.timeout(90)]

SOCKET_TIMEOUT = 0.2
MIN_SENDS = 1000
MIN_FAULTS = 8
RUN_SECONDS = 2.5  # at least; the run also goes on until MIN_SENDS and MIN_FAULTS are reached
SESSIONS = ("a", "b")  # two streams: retries group entries per stream
CONCURRENT = 8  # tasks sending at once in each round (coalesced by the sink)
BATCH = 8  # events per send_many

Inject = Callable[[], Awaitable[int]]


class _Run:
    """What the senders did: returned ids and raised sends, by event sequence number."""

    def __init__(self, prefix: str, *, batch: int, pad: int) -> None:
        self.prefix = prefix
        self.batch = batch
        self.padding = "x" * pad
        self.next = 0
        self.returned: dict[str, tuple[str, str]] = {}  # seq -> (stream id, entry id)
        self.raised: Counter[str] = Counter()  # error type -> sends
        self.raised_seqs: set[str] = set()
        self.sequential: list[str] = []  # seqs sent one at a time by one task, in order
        self.batches: list[list[str]] = []  # seqs of each send_many that returned, in order

    def event(self) -> StreamEvent:
        seq = f"{self.prefix}-{self.next}"
        session = SESSIONS[self.next % len(SESSIONS)]
        self.next += 1
        payload = {"seq": seq, "pad": self.padding}
        return StreamEvent("tool_end", "run", f"{self.prefix}{session}", payload=payload)

    @property
    def sends(self) -> int:
        return len(self.returned) + len(self.raised_seqs)

    async def send(self, sink: StreamSink, *, sequential: bool = False) -> None:
        event = self.event()
        seq = event.payload["seq"]
        if sequential:
            self.sequential.append(seq)
        try:
            published = await sink.send(event)
        except StreamsinkError as exc:
            self.raised[type(exc).__name__] += 1
            self.raised_seqs.add(seq)
        else:
            self.returned[seq] = (published.stream_id, published.entry_id)

    async def send_many(self, sink: StreamSink) -> None:
        events = [self.event() for _ in range(self.batch)]
        try:
            published = await sink.send_many(events)
        except StreamsinkError as exc:
            self.raised[type(exc).__name__] += len(events)
            self.raised_seqs.update(e.payload["seq"] for e in events)
        else:
            for event, item in zip(events, published, strict=True):
                self.returned[event.payload["seq"]] = (item.stream_id, item.entry_id)
            self.batches.append([event.payload["seq"] for event in events])


async def _round(run: _Run, sink: StreamSink) -> None:
    """One round of every sending pattern: sequential sends, concurrent sends, one batch."""
    for _ in range(10):
        await run.send(sink, sequential=True)
    async with anyio.create_task_group() as tg:
        for _ in range(CONCURRENT):
            tg.start_soon(run.send, sink)
    await run.send_many(sink)


async def _publish_under_faults(
    url: str, inject: Inject, every: float, retries: int, *, batch: int = BATCH, pad: int = 0
) -> tuple[_Run, int, dict[str, int], float]:
    """Send rounds until RUN_SECONDS, MIN_SENDS and MIN_FAULTS are all reached, injecting a
    fault every ``every`` seconds; ``send_many`` sends ``batch`` events, each padded with
    ``pad`` bytes. Returns the run, the faults injected, the backend's retry statistics and the
    seconds it took."""
    run = _Run(uuid.uuid4().hex[:8], batch=batch, pad=pad)
    faults = 0
    options = f"socket_timeout={SOCKET_TIMEOUT}&socket_connect_timeout=2&retries={retries}&maxlen=0"
    backend = await RedisBackend.open(f"{url}?{options}")
    started = time.monotonic()
    try:
        async with StreamSink(backend) as sink:
            done = anyio.Event()

            async def injector() -> None:
                nonlocal faults
                while not done.is_set():
                    await anyio.sleep(every)
                    if not done.is_set():
                        faults += await inject()

            async with anyio.create_task_group() as tg:
                tg.start_soon(injector)
                while (
                    time.monotonic() - started < RUN_SECONDS
                    or run.sends < MIN_SENDS
                    or faults < MIN_FAULTS
                ):
                    await _round(run, sink)
                    await anyio.sleep(0.005)
                done.set()
                tg.cancel_scope.cancel()
        stats = _retry_statistics(backend)
    finally:
        await backend.aclose()
    return run, faults, stats, time.monotonic() - started


def _retry_statistics(backend: RedisBackend) -> dict[str, int]:
    """The backend's own counts of retried appends (absent before retry-safe publishing)."""
    appender = getattr(backend._ctx.commands, "appender", None)
    stats = getattr(appender, "statistics", None)
    return {} if stats is None else {f"retry_{k}": v for k, v in stats.as_dict().items()}


async def _stored(server: RedisServer, prefix: str) -> dict[str, list[tuple[str, str]]]:
    """seq -> every (stream id, entry id) holding it, read straight from Redis."""
    found: dict[str, list[tuple[str, str]]] = {}
    client = aioredis.Redis(port=server.port, protocol=2)
    try:
        for session in SESSIONS:
            stream_id = f"session/{prefix}{session}"
            for raw_id, fields in await client.xrange(f"pulse:stream:{stream_id}"):
                seq = orjson.loads(fields[b"p"])["payload"]["seq"]
                found.setdefault(seq, []).append((stream_id, raw_id.decode()))
    finally:
        await client.aclose()
    return found


def _account(run: _Run, stored: dict[str, list[tuple[str, str]]]) -> dict[str, Any]:
    duplicates = sorted(seq for seq, where in stored.items() if len(where) > 1)
    lost = sorted(seq for seq, at in run.returned.items() if stored.get(seq) != [at])
    unexplained = sorted(set(stored) - set(run.returned) - run.raised_seqs)
    return {
        "sends": run.sends,
        "returned": len(run.returned),
        "raised": len(run.raised_seqs),
        "raised_by_error": dict(run.raised),
        "raised_but_written": len(run.raised_seqs & stored.keys()),
        "duplicates": len(duplicates),
        "duplicated_sends_that_returned": len(set(duplicates) & run.returned.keys()),
        "lost": len(lost),
        "unexplained": len(unexplained),
        "_duplicates": duplicates[:10],
        "_lost": lost[:10],
    }


def _check(
    name: str,
    run: _Run,
    faults: int,
    stats: dict[str, int],
    seconds: float,
    stored: dict[str, list[tuple[str, str]]],
) -> None:
    """Record the figures of one scenario, then hold them to the guarantee."""
    figures = _account(run, stored)
    public = {k: v for k, v in figures.items() if not k.startswith("_")}
    record_figures(
        f"publish_retries[{name}]",
        {**public, "faults_injected": faults, **stats, "seconds": round(seconds, 1)},
    )
    assert faults >= MIN_FAULTS
    assert figures["sends"] >= MIN_SENDS
    assert figures["duplicates"] == 0, (
        f"{figures['duplicates']} duplicated: {figures['_duplicates']}"
    )
    assert figures["lost"] == 0, f"{figures['lost']} lost: {figures['_lost']}"
    assert figures["unexplained"] == 0  # entries no send of this run wrote
    # Per-stream order: one task's sequential sends, and each batch, got increasing ids on
    # each stream, retried or not.
    for seqs in [run.sequential, *run.batches]:
        for session in SESSIONS:
            ids = [
                run.returned[seq][1]
                for seq in seqs
                if seq in run.returned and run.returned[seq][0].endswith(session)
            ]
            keys = [tuple(map(int, i.split("-"))) for i in ids]
            assert keys == sorted(keys)


@pytest.fixture
def proxied(redis_process: RedisServer) -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", redis_process.port) as proxy:
        yield proxy


@pytest.mark.parametrize("retries", [1, 3])
async def test_cut_replies(proxied: TcpProxy, redis_process: RedisServer, retries: int) -> None:
    """The next reply is cut halfway and its connection closed, every 50 ms."""

    async def cut() -> int:
        proxied.cut_next_reply()
        return 1

    run, _, stats, seconds = await _publish_under_faults(proxied.url, cut, 0.05, retries)
    proxied.pass_through()
    stored = await _stored(redis_process, run.prefix)
    _check(f"cut reply, retries={retries}", run, proxied.stats().cuts, stats, seconds, stored)


@pytest.mark.parametrize("retries", [1, 3])
async def test_stalled_connections(
    proxied: TcpProxy, redis_process: RedisServer, retries: int
) -> None:
    """Every 300 ms the open connections stall for 0.5 s (longer than socket_timeout), then
    deliver whatever they held, to a client that gave up on them meanwhile."""

    async def stall() -> int:
        return 1 if proxied.stall(0.5) else 0

    run, faults, stats, seconds = await _publish_under_faults(proxied.url, stall, 0.3, retries)
    await anyio.sleep(0.6)  # held bytes still on their way are delivered (or dropped) by now
    proxied.pass_through()
    stats["late_bytes_delivered"] = proxied.stats().late_bytes_delivered
    stats["late_bytes_lost"] = proxied.stats().late_bytes_lost
    stored = await _stored(redis_process, run.prefix)
    _check(f"stall, retries={retries}", run, faults, stats, seconds, stored)


@pytest.mark.parametrize("retries", [1, 3])
async def test_black_holed_replies(
    proxied: TcpProxy, redis_process: RedisServer, retries: int
) -> None:
    """Every 250 ms the open connections stop passing replies (the commands still run)."""

    async def black_hole() -> int:
        return 1 if proxied.black_hole() else 0

    run, faults, stats, seconds = await _publish_under_faults(
        proxied.url, black_hole, 0.25, retries
    )
    proxied.pass_through()
    stored = await _stored(redis_process, run.prefix)
    _check(f"black hole, retries={retries}", run, faults, stats, seconds, stored)


@pytest.mark.parametrize("retries", [1, 3])
async def test_client_kill_storm(redis_process: RedisServer, retries: int) -> None:
    """A second client runs CLIENT KILL TYPE normal every 200 ms (it skips itself). Batches
    are large here (100 events of 1 kB: Redis reads and runs them over several passes of its
    event loop), so kills land between an XADD running and its reply being written."""
    killer = aioredis.Redis(port=redis_process.port, protocol=2)
    killed = 0

    async def kill() -> int:
        nonlocal killed
        killed += int(await killer.execute_command("CLIENT", "KILL", "TYPE", "normal"))
        return 1

    try:
        run, faults, stats, seconds = await _publish_under_faults(
            redis_process.url, kill, 0.2, retries, batch=100, pad=1000
        )
    finally:
        await killer.aclose()
    stats["connections_killed"] = killed
    stored = await _stored(redis_process, run.prefix)
    _check(f"CLIENT KILL storm, retries={retries}", run, faults, stats, seconds, stored)
