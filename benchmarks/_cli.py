"""``python -m benchmarks``: start a private redis-server (and nats-server), run everything,
write the report."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import anyio

from ._chart import draw
from ._cluster import cluster_comparisons, private_cluster, with_cluster
from ._config import Config
from ._env import Env
from ._fanout_report import extract, splice
from ._measure import Sample
from ._nats_server import nats_server, unavailable
from ._profile import profile
from ._report import RSS_LIMIT_MB, render
from ._rss import RssResult, check
from ._runner import run_interleaved
from ._scenarios import Scenario, catalogue
from ._targets import Outcome, comparisons, evaluate

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="smaller counts, 3 passes (~1 minute)")
    p.add_argument("--repeats", type=int, help="interleaved passes (default 3 quick, 5 full)")
    p.add_argument(
        "--only", action="append", default=[], metavar="TEXT",
        help="run only scenarios whose key contains TEXT (repeatable); the report is not written",
    )  # fmt: skip
    p.add_argument("--no-faststream", action="store_true", help="skip the FastStream scenarios")
    p.add_argument("--no-fakeredis", action="store_true", help="skip the fakeredis scenarios")
    p.add_argument(
        "--no-nats", action="store_true",
        help="skip the NATS JetStream scenarios (run when streamsink-nats is installed)",
    )  # fmt: skip
    p.add_argument(
        "--no-cluster", action="store_true",
        help="skip the Redis Cluster scenarios (a private 3+3 cluster otherwise)",
    )  # fmt: skip
    p.add_argument("--no-rss", action="store_true", help="skip the bounded-memory check")
    p.add_argument("--output", type=Path, help="report path (default docs/benchmarks.md)")
    p.add_argument("--redis-url", help="use this server instead of starting a private one")
    p.add_argument(
        "--nats-url", help="use this JetStream server instead of starting a private nats-server"
    )
    p.add_argument("--profile", metavar="KEY", help="profile one scenario with pyinstrument")
    p.add_argument("--list", action="store_true", help="list the scenario keys and exit")
    return p


@contextmanager
def _redis(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.support.redis_server import RedisServer

    with RedisServer() as server:
        yield server.url


@contextmanager
def _maybe_nats(url: str | None, needed: bool) -> Iterator[str | None]:
    if not needed:
        yield None
        return
    with nats_server(url) as running:
        yield running


def _select(scenarios: list[Scenario], only: Sequence[str]) -> list[Scenario]:
    if not only:
        return scenarios
    return [s for s in scenarios if any(text in s.key for text in only)]


def _print_outcomes(outcomes: Sequence[Outcome]) -> None:
    print(f"\n{'comparison':<58} {'ratio':>6}  {'min-max':>11}  {'target':>7}")
    for o in outcomes:
        if o.ratio is None:
            continue
        c = o.comparison
        bound = "" if c.bound is None else f"{'>=' if c.metric == 'rate' else '<='}{c.bound:g}"
        verdict = {None: "", True: "met", False: "NOT MET"}[o.met]
        print(
            f"{c.label:<58} {o.ratio.median:>6.2f}  {o.ratio.low:>5.2f}-{o.ratio.high:<5.2f}"
            f"  {bound:>7}  {verdict}"
        )


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    config = Config.quick() if args.quick else Config.full()
    if args.repeats:
        config = Config(**{**config.__dict__, "repeats": args.repeats})
    nats = not args.no_nats
    if nats and not args.nats_url and (why := unavailable()) is not None:
        print(f"  no NATS rows: {why}", file=sys.stderr)
        nats = False
    every = catalogue(faststream=not args.no_faststream, fakeredis=not args.no_fakeredis, nats=nats)
    if not args.no_cluster:
        every = with_cluster(every)
    scenarios = _select(every, args.only)
    if args.list:
        for s in with_cluster(catalogue()):
            print(f"{s.key:<34} {s.how}")
        return
    started = time.perf_counter()
    needs_nats = any(s.backend == "nats" for s in scenarios) or (
        args.profile is not None and args.profile.startswith("nats/")
    )
    clustered = any(s.backend.startswith("cluster") for s in scenarios)
    with (
        _redis(args.redis_url) as redis_url,
        _maybe_nats(args.nats_url, needs_nats) as nats_url,
        private_cluster(clustered) as cluster_url,
    ):
        env = Env(config, redis_url, nats_url, cluster_url=cluster_url)
        if args.profile:
            chosen = [s for s in catalogue() if s.key == args.profile]
            if not chosen:
                sys.exit(f"no scenario {args.profile!r}; see --list")
            anyio.run(profile, chosen[0], env, RESULTS, backend="asyncio")
            return
        samples: dict[str, list[Sample]] = anyio.run(
            run_interleaved, scenarios, env, backend="asyncio"
        )
        rss: list[RssResult] = []
        if not args.no_rss and not args.only:
            backends = ["memory", "redis"] + ([] if args.no_fakeredis else ["fakeredis"])
            # One fresh process per backend, run side by side: each measures only its own
            # peak RSS, and fakeredis's 200,000 events alone take ~15 s.
            with ThreadPoolExecutor(len(backends)) as pool:
                runs = [
                    pool.submit(check, backend, env.url(backend), config.rss_events)
                    for backend in backends
                ]
                rss = [run.result() for run in runs]
            for result in rss:
                print(
                    f"  memory bound {result.backend:<10} +{result.growth_mb:5.1f} MB "
                    f"(limit {RSS_LIMIT_MB:g}) in {result.seconds:.1f} s",
                    file=sys.stderr,
                )
    outcomes = evaluate([*comparisons(), *cluster_comparisons()], samples)
    _print_outcomes(outcomes)
    for r in rss:
        print(f"memory bound {r.backend:<10} peak RSS +{r.growth_mb:.1f} MB (< {RSS_LIMIT_MB:g})")
    output = args.output or (None if args.only else ROOT / "docs" / "benchmarks.md")
    if output is not None:
        chart = output.with_suffix(".png")
        draw(samples, chart)
        notes_file = ROOT / "benchmarks" / "NOTES.md"
        notes = notes_file.read_text() if notes_file.exists() else ""
        report = render(
            mode="quick" if args.quick else "full",
            repeats=config.repeats,
            scenarios=scenarios,
            samples=samples,
            outcomes=outcomes,
            rss=rss,
            chart=chart.name,
            notes=notes,
        )
        # The fan-out section comes from `python -m benchmarks.fanout --report` (minutes and
        # 10,000 connections of its own): keep the one the page has, as it was.
        fanout = extract(output.read_text()) if output.exists() else None
        output.write_text(splice(report, fanout) if fanout else report)
        print(f"\nwrote {output} and {chart}")
    print(f"total {time.perf_counter() - started:.0f} s", file=sys.stderr)
