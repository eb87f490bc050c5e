"""Fan-out: many in-process readers over many streams, side by side in one run.

``python -m benchmarks.fanout [--readers 10000] [--streams 1000] [--seconds 4] [--quick]
[--only SYSTEM] [--all] [--drain 5] [--report]``

Starts a private redis-server (high ``maxclients``, the soft fd limit raised to the hard one),
then runs each system in a fresh interpreter, one after the other:

- ``streamsink``: fan-out subscriptions (``SubscriberOptions(group=None)``) as they are: today a
  dedicated read connection each, so the reader count is capped by the fd limit and
  ``maxclients`` (the cap is printed). In a tree with ``shared_reads``, run with
  ``shared_reads=False``: the one-connection-per-reader path.
- ``streamsink-shared``: the same with ``shared_reads=True``, when this tree has the option
  (else "not available in this tree").
- ``litestar``: ``RedisChannelsStreamBackend`` under a ``ChannelsPlugin`` as its docs show (one
  task reading every subscribed channel with a multi-key ``XREAD``), a subscriber per reader.
- ``litestar-block1s`` (only with ``--all`` or ``--only``): the same with
  ``stream_sleep_no_subscriptions=1000``, its XREAD's block time (1 ms by default).
- ``streamsink-groups``: one idle auto-mode group subscription per stream (CPU and commands
  only).

Per system: Redis connections (``CLIENT LIST``, the control connection left out), setup time
and RSS growth to have every reader subscribed, idle CPU of the process and of redis-server and
Redis commands/s over ``--idle`` seconds with nothing sent, then ``--rate`` events/s round-robin
over the streams for ``--seconds``, each delivery (event x reader) one latency sample
(``perf_counter_ns`` carried in the payload), and deliveries against what was expected.
``--report`` writes the table into docs/benchmarks.md (section "Fan-out: many readers, many
streams"); a full ``python -m benchmarks`` keeps that section. The last results are also in
``build/fanout.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ._fanout_report import SECTION_TITLE, render_section, splice
from ._fanout_stats import FanoutResult, markdown_table, reader_cap, target_lines

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "benchmarks.md"
RESULTS_JSON = ROOT / "build" / "fanout.json"
ORDER = ("streamsink", "streamsink-shared", "litestar", "litestar-block1s", "streamsink-groups")
LABELS = {
    "streamsink": "streamsink fan-out, a connection per reader",
    "streamsink-shared": "streamsink fan-out, shared reads",
    "litestar": "Litestar RedisChannelsStreamBackend",
    "litestar-block1s": "Litestar, stream_sleep_no_subscriptions=1000",
    "streamsink-groups": "streamsink, idle group subscriptions",
}
OPTIONAL = ("litestar-block1s",)  # not in a default run: it would take the run past 3 minutes
CHILD_TIMEOUT = 240.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.fanout", description=__doc__)
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--readers", type=int, help="fan-out readers (default 10000, quick 1000)")
    p.add_argument("--streams", type=int, help="streams (default 1000, quick 100)")
    p.add_argument("--seconds", type=float, help="publishing time (default 4, quick 3)")
    p.add_argument(
        "--drain", type=float, default=5.0, help="longest wait for the last deliveries, s"
    )
    p.add_argument("--idle", type=float, help="idle measurement, s (default 5)")
    p.add_argument("--rate", type=float, default=1000.0, help="events/s over all streams")
    p.add_argument("--quick", action="store_true", help="smaller sizes (~40 s)")
    p.add_argument(
        "--only", action="append", default=[], choices=ORDER, help="run only this (repeatable)"
    )
    p.add_argument("--all", action="store_true", help="also the optional litestar-block1s")
    p.add_argument("--report", action="store_true", help="write the section of docs/benchmarks.md")
    p.add_argument("--child", help=argparse.SUPPRESS)  # internal: run one system, print JSON
    return p


def _raise_fd_limit() -> int:
    """Soft fd limit raised to the hard one (inherited by redis-server and the children)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _run_child(spec: dict[str, object]) -> FanoutResult:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.fanout", "--child", json.dumps(spec)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return FanoutResult(
            str(spec["system"]), str(spec["label"]), available=False,
            note=f"failed (exit {done.returncode}; see stderr)",
        )  # fmt: skip
    result = FanoutResult.from_json(json.loads(lines[-1]))
    teardown = "?" if result.teardown_s is None else f"{result.teardown_s:.1f}"
    print(
        f"  {result.system}: {time.perf_counter() - started:.1f} s (leaving: {teardown} s)",
        file=sys.stderr,
    )
    return result


def _child(encoded: str) -> None:
    import anyio

    from ._fanout_systems import ChildSpec, measure

    spec = ChildSpec(**json.loads(encoded))
    result = anyio.run(measure, spec, backend="asyncio")
    print(json.dumps(result.to_json()))


def _maxclients(url: str) -> int:
    import redis

    with redis.Redis.from_url(url) as client:
        return int(client.config_get("maxclients")["maxclients"])


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.child:
        _child(args.child)
        return 0
    from ._fanout_systems import has_shared_reads

    readers = args.readers or (1_000 if args.quick else 10_000)
    streams = args.streams or (100 if args.quick else 1_000)
    seconds = args.seconds or (3.0 if args.quick else 4.0)
    idle = args.idle or 5.0  # a fan-out reader blocks up to 5 s: see a whole cycle
    if min(readers, streams, seconds, idle, args.rate) <= 0 or args.drain < 0:
        sys.exit("--readers, --streams, --seconds, --idle and --rate must be > 0, --drain >= 0")
    default = [s for s in ORDER if args.all or s not in OPTIONAL]
    chosen = [s for s in ORDER if s in args.only] if args.only else default
    fd_soft = _raise_fd_limit()

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.support.redis_server import RedisServer

    started = time.perf_counter()
    wanted_clients = readers + 1_000
    with RedisServer(extra_args=("--maxclients", str(wanted_clients))) as server:
        maxclients = _maxclients(server.url)  # redis lowers it when it cannot get the fds
        cap = reader_cap(readers, fd_soft, maxclients)
        cap_note = (
            f"per-connection readers: {cap:,} of {readers:,} (fd soft limit {fd_soft:,}, "
            f"redis maxclients {maxclients:,}, 200 kept for the rest)"
        )
        print(cap_note, file=sys.stderr)
        results: list[FanoutResult] = []
        for system in chosen:
            label = LABELS[system]
            if system == "streamsink-shared" and not has_shared_reads():
                results.append(
                    FanoutResult(system, label, available=False, note="not available in this tree")
                )
                continue
            n = cap if system in ("streamsink", "streamsink-groups") else readers
            spec = {
                "system": system, "url": server.url, "readers": n, "streams": streams,
                "rate": args.rate, "seconds": seconds, "idle_seconds": idle,
                "settle_seconds": 1.5, "drain_seconds": args.drain, "label": label,
            }  # fmt: skip
            results.append(_run_child(spec))
    total = time.perf_counter() - started

    table = markdown_table(results)
    print(
        f"\n{readers:,} readers over {streams:,} streams, {args.rate:,.0f} events/s for "
        f"{seconds:g} s, idle {idle:g} s; {cap_note}\n"
    )
    print("\n".join(table))
    print("\nTargets (shared reads; informational):")
    print("\n".join(target_lines(results, readers, streams)))
    for r in results:
        if r.idle_top:
            top = ", ".join(f"{name} {rate:,.0f}" for name, rate in r.idle_top.items())
            print(f"  idle commands/s, {r.label}: {top}")
    print(f"\ntotal {total:.0f} s", file=sys.stderr)

    meta = {
        "readers": readers, "streams": streams, "rate": args.rate, "seconds": seconds,
        "idle": idle, "cap_note": cap_note, "quick": args.quick,
    }  # fmt: skip
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_JSON.write_text(
        json.dumps({"meta": meta, "results": [r.to_json() for r in results]}, indent=1)
    )
    if args.report:
        section = render_section(results, meta)
        REPORT.write_text(splice(REPORT.read_text() if REPORT.exists() else "", section))
        print(f"wrote the section {SECTION_TITLE!r} of {REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
