"""Pure helpers of the fan-out benchmark: what one system's run yields, the reader cap, Redis
statistics deltas, and the markdown table. No Redis, no event loop: tested without a server."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "CONTROL_COMMANDS",
    "FanoutResult",
    "TARGET_CPU_PCT",
    "TARGET_P99_MS",
    "TARGET_READ_CONNECTIONS",
    "calls_of",
    "commands_delta",
    "count_connections",
    "markdown_table",
    "reader_cap",
    "readers_per_stream",
    "target_lines",
]

#: the targets of shared reads (printed against every system, never asserted)
TARGET_READ_CONNECTIONS = 4
TARGET_CPU_PCT = 2.0
TARGET_P99_MS = 20.0

#: commands the benchmark's own control connection sends while it measures; not the system's
CONTROL_COMMANDS = frozenset({"info", "config|resetstat", "client|list", "client|id"})


@dataclass
class FanoutResult:
    """One system's row. ``None`` means not measured (an idle-only row has no latency)."""

    system: str
    label: str
    available: bool = True
    idle_only: bool = False  # the group row: no publishing, no targets
    note: str = ""
    readers: int = 0
    streams: int = 0
    connections: int | None = None  # every connection of the system (CLIENT LIST, control excluded)
    reading: int | None = None  # of which blocked in, or last ran, XREAD/XREADGROUP
    setup_s: float | None = None
    rss_mb: float | None = None  # RSS growth from before subscribing to all subscribed
    idle_cpu_pct: float | None = None  # process CPU, % of one core
    idle_redis_cpu_pct: float | None = None  # redis-server CPU, % of one core
    idle_cmds_per_s: float | None = None
    idle_top: dict[str, float] = field(default_factory=dict)  # command -> calls/s
    publish_rate: float | None = None  # achieved, events/s (the offered rate is the CLI's)
    p50_ms: float | None = None
    p99_ms: float | None = None
    delivered: int | None = None
    expected: int | None = None
    duplicates: int | None = None
    errors: int | None = None  # reported by the readers (streamsink: on_error), retried
    teardown_s: float | None = None  # leaving every subscription and the backend

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FanoutResult:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


def reader_cap(requested: int, fd_soft: int, maxclients: int, reserve: int = 200) -> int:
    """How many one-connection-per-reader readers fit: each needs one fd here and one client slot
    in Redis; ``reserve`` is kept for everything else (pool, command connection, control
    connection, the interpreter's own files). At least 1."""
    if requested < 1:
        raise ValueError(f"requested readers must be >= 1, got {requested}")
    room = min(fd_soft, maxclients) - reserve
    return max(1, min(requested, room))


def readers_per_stream(readers: int, streams: int) -> list[int]:
    """Reader ``r`` reads stream ``r % streams``: how many readers each stream has."""
    if streams < 1 or readers < 0:
        raise ValueError(f"need streams >= 1 and readers >= 0, got {streams}, {readers}")
    base, extra = divmod(readers, streams)
    return [base + (1 if s < extra else 0) for s in range(streams)]


def calls_of(commandstats: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """``INFO commandstats`` as parsed by redis-py -> command name -> calls."""
    return {
        name.removeprefix("cmdstat_"): int(stats["calls"]) for name, stats in commandstats.items()
    }


def commands_delta(
    before: Mapping[str, int], after: Mapping[str, int], seconds: float
) -> tuple[float, dict[str, float]]:
    """Commands per second between two ``calls_of`` snapshots, control commands left out:
    the total and each command's rate, largest first."""
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    rates = {
        name: (count - before.get(name, 0)) / seconds
        for name, count in after.items()
        if name not in CONTROL_COMMANDS and count > before.get(name, 0)
    }
    ordered = dict(sorted(rates.items(), key=lambda item: -item[1]))
    return sum(ordered.values()), ordered


def count_connections(clients: Iterable[Mapping[str, Any]], own_id: int) -> tuple[int, int]:
    """``CLIENT LIST`` entries (redis-py dicts) -> (connections, reading ones), the control
    connection ``own_id`` excluded. Reading: blocked (flag ``b``) or last command XREAD*."""
    total = reading = 0
    for client in clients:
        if int(client["id"]) == own_id:
            continue
        total += 1
        cmd = str(client.get("cmd", ""))
        if "b" in str(client.get("flags", "")) or cmd.startswith("xread"):
            reading += 1
    return total, reading


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _cell_connections(r: FanoutResult) -> str:
    if r.connections is None:
        return "-"
    return f"{r.connections:,} ({r.reading:,})"


def _cell_delivery(r: FanoutResult) -> str:
    if r.expected is None or r.delivered is None:
        return "-"
    text = f"{r.delivered:,} / {r.expected:,}"
    if r.delivered < r.expected:
        text += f" (**{r.expected - r.delivered:,} not in time**)"
    if r.duplicates:
        text += f", {r.duplicates:,} dup"
    if r.errors:
        text += f"; {r.errors:,} read errors retried"
    return text


def markdown_table(results: Sequence[FanoutResult]) -> list[str]:
    """The table, one row per system (unavailable systems say why)."""
    lines = [
        "| system | readers / streams | Redis conns (reading) | setup | RSS growth "
        "| idle CPU (client) | idle CPU (redis) | idle cmds/s | published/s | p50 | p99 "
        "| delivered / expected |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        if not r.available:
            lines.append(f"| {r.label} | {r.note} |" + " |" * 10)
            continue
        lines.append(
            f"| {r.label} | {r.readers:,} / {r.streams:,} | {_cell_connections(r)} "
            f"| {_num(r.setup_s, '.1f')} s | {_num(r.rss_mb, '.0f')} MB "
            f"| {_num(r.idle_cpu_pct, '.1f')} % | {_num(r.idle_redis_cpu_pct, '.1f')} % "
            f"| {_num(r.idle_cmds_per_s, ',.0f')} | {_num(r.publish_rate, ',.0f')} "
            f"| {_num(r.p50_ms, ',.1f')} ms | {_num(r.p99_ms, ',.1f')} ms "
            f"| {_cell_delivery(r)} |"
        )
    return lines


def _verdict(ok: bool | None) -> str:
    return {None: "-", True: "met", False: "NOT met"}[ok]


def target_lines(results: Sequence[FanoutResult], readers: int, streams: int) -> list[str]:
    """Each available system against the three targets (informational: never asserted). A
    system run with fewer readers than asked cannot meet them."""
    lines = []
    for r in results:
        if not r.available or r.idle_only:
            continue
        full = r.readers >= readers and r.streams >= streams
        conns = None if r.reading is None else r.reading <= TARGET_READ_CONNECTIONS and full
        cpu = None if r.idle_cpu_pct is None else r.idle_cpu_pct < TARGET_CPU_PCT
        p99 = None
        if r.p99_ms is not None:
            p99 = r.p99_ms < TARGET_P99_MS and r.delivered == r.expected
        lines.append(
            f"- {r.label}: read connections <= {TARGET_READ_CONNECTIONS} at "
            f"{readers:,} readers: {_verdict(conns)}; idle CPU < {TARGET_CPU_PCT:g} %: "
            f"{_verdict(cpu)}; p99 < {TARGET_P99_MS:g} ms with every event delivered: "
            f"{_verdict(p99)}"
        )
    return lines
