"""The catalogue: every scenario, keyed ``<backend>/<system>/<work>``, with how it is driven."""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal

from . import _raw_memory as raw_memory
from . import _raw_redis as raw_redis
from . import _streamsink as ss
from ._env import Env
from ._measure import Sample

__all__ = ["WORK", "Scenario", "catalogue"]

Kind = Literal["rate", "latency"]

WORK: dict[str, str] = {
    "send-seq": "publish, one task, each call awaited",
    "send-64": "publish, 64 concurrent tasks, each call awaited",
    "send-batch": "publish in batches of 100",
    "consume": "consumer group, batch acks",
    "manual-seq": "consumer group, one awaited ack per entry, sequential",
    "manual-64": "consumer group, one awaited ack per entry, 64 workers",
    "e2e": "produce and consume concurrently, in process",
    "latency": "end-to-end latency at 1,000 events/s",
}


@dataclass(frozen=True)
class Scenario:
    backend: str  # redis | nats | memory | fakeredis
    system: str  # raw | streamsink | faststream
    work: str  # a key of WORK
    how: str  # what exactly runs
    run: Callable[[Env], Awaitable[Sample]]

    @property
    def key(self) -> str:
        return f"{self.backend}/{self.system}/{self.work}"

    @property
    def kind(self) -> Kind:
        return "latency" if self.work == "latency" else "rate"


def _bound(backend: str, rows: list[tuple[str, str, Callable[..., Awaitable[Sample]]]],
           system: str) -> list[Scenario]:  # fmt: skip
    return [
        Scenario(backend, system, work, how, partial(fn, backend=backend)) for work, how, fn in rows
    ]


def _raw_redis(backend: str) -> list[Scenario]:
    rows = [
        ("send-seq", "awaited XADD", raw_redis.send_seq),
        ("send-64", "64 tasks, each awaited XADD", raw_redis.send_concurrent),
        ("send-batch", "pipelined XADD, 100 per pipeline", raw_redis.send_batch),
        ("consume", "XREADGROUP COUNT 100 + orjson.loads each + XACK per batch", raw_redis.consume),
        ("manual-seq", "XREADGROUP COUNT 100, per entry orjson.loads + awaited XACK",
         raw_redis.manual_seq),
        ("manual-64", "XREADGROUP COUNT 100 -> 64 workers, each orjson.loads + awaited XACK",
         raw_redis.manual_concurrent),
        ("latency", "awaited XADD -> XREADGROUP BLOCK COUNT 100, XACK per batch",
         raw_redis.latency),
    ]  # fmt: skip
    return _bound(backend, rows, "raw")


def _raw_nats() -> list[Scenario]:
    from . import _raw_nats as raw_nats  # nats-py: only when the NATS rows are asked for

    rows = [
        ("send-seq", "awaited JetStream publish", raw_nats.send_seq),
        ("send-64", "64 tasks, each awaited publish (one connection)", raw_nats.send_concurrent),
        ("send-batch", "100 x publish_async, then await the 100 acks", raw_nats.send_batch),
        ("consume", "durable pull consumer: fetch(100) + orjson.loads + ack() each",
         raw_nats.consume),
        ("latency", "awaited publish -> pull consumer fetch(100), ack each", raw_nats.latency),
    ]  # fmt: skip
    return _bound("nats", rows, "raw")


# The NATS rows: the sends, the group consumer and latency, each beside a raw nats-py run of
# the same work (manual mode has no raw NATS baseline here).
_NATS_WORK = ("send-seq", "send-64", "send-batch", "consume", "latency")


def _streamsink(backend: str) -> list[Scenario]:
    rows = [
        ("send-seq", "await sink.send(event)", ss.send_seq),
        ("send-64", "64 tasks, each await sink.send(event)", ss.send_concurrent),
        ("send-batch", "await sink.send_many(100 events)", ss.send_batch),
        ("consume", "auto mode: async for event in subscription", ss.consume),
        ("manual-64", "manual mode: 64 workers iterate, each await delivery.ack()",
         ss.manual_concurrent),
        ("latency", "sink.send -> auto-mode subscription", ss.latency),
    ]  # fmt: skip
    if backend == "memory":
        rows.append(("e2e", "sink.send task -> auto-mode subscription", ss.e2e))
    if backend == "nats":
        rows = [row for row in rows if row[0] in _NATS_WORK]
    return _bound(backend, rows, "streamsink")


def _raw_memory() -> list[Scenario]:
    return [
        Scenario("memory", "raw", "e2e",
                 "anyio memory stream (100), await send / async for, orjson dumps/loads",
                 raw_memory.e2e),
        Scenario("memory", "raw", "latency", "anyio memory stream (100), orjson dumps/loads",
                 raw_memory.latency),
    ]  # fmt: skip


def _faststream() -> list[Scenario]:
    # Imported here: FastStream is in the 'bench' extra, and the catalogue (without its rows)
    # is also what the tests of the benchmark code read.
    from . import _faststream as fs

    rows = [
        ("send-seq", "await broker.publish(body, stream=...)", fs.send_seq),
        ("send-64", "64 tasks, each await broker.publish(...)", fs.send_concurrent),
        ("send-batch", "100 x publish(pipeline=pipe), pipe.execute()", fs.send_batch),
        ("consume", "stream subscriber in a group, default ack (XACK per message)", fs.consume),
        ("manual-64", "AckPolicy.MANUAL, max_workers=64, await msg.ack()",
         fs.manual_concurrent),
        ("latency", "broker.publish -> stream subscriber in a group", fs.latency),
    ]  # fmt: skip
    return [Scenario("redis", "faststream", work, how, fn) for work, how, fn in rows]


def catalogue(
    *, faststream: bool = True, fakeredis: bool = True, nats: bool | None = None
) -> list[Scenario]:
    """Every scenario, in the order a pass runs them: per backend and work item, the raw
    baseline, streamsink and FastStream back to back, so the sides of a ratio run seconds apart.
    ``nats``: the NATS JetStream rows (streamsink-nats, which need a nats-server); by default
    when nats-py is installed."""
    if nats is None:
        nats = importlib.util.find_spec("nats") is not None
    scenarios = [*_raw_redis("redis"), *_streamsink("redis")]
    if faststream:
        scenarios += _faststream()
    if nats:
        scenarios += [*_raw_nats(), *_streamsink("nats")]
    scenarios += [*_raw_memory(), *_streamsink("memory")]
    if fakeredis:
        scenarios += [*_raw_redis("fakeredis"), *_streamsink("fakeredis")]
    backends = ["redis", "nats", "memory", "fakeredis"]
    works = list(WORK)
    systems = ["raw", "streamsink", "faststream"]
    return sorted(
        scenarios,
        key=lambda s: (backends.index(s.backend), works.index(s.work), systems.index(s.system)),
    )
