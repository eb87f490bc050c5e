"""What idle group subscriptions cost, and how soon a crashed consumer's entries come back:
``python -m benchmarks.idle_groups [--url URL] [--baseline SRC] [--seconds S] [--notes]``.

Two layouts of 1,000 idle group subscriptions (auto mode, nothing sent) in one process:
1,000 streams x 1 subscription, and 100 streams x 10 subscriptions of one group; each with
pulse's keep-alive off and on. Each layout runs in a child process of its own, which opens the
subscriptions, lets them settle, then measures over ``--seconds``: its CPU time (a share of one
core, ``time.process_time``), the Redis commands run (``INFO commandstats`` after ``CONFIG
RESETSTAT``, commands inside scripts included, the benchmark's own two left out) and the
clients connected.

Then the redelivery after a consumer crash: on 10 streams, each with one idle subscription, a
consumer that then "dies" takes one new entry (``XADD`` and its ``XREADGROUP`` in one
``MULTI``, so the blocked subscription does not get it first) at a random moment; the time
until the subscription hands that entry out, minus the grace period, is what the claims add.

``--pulse-replica`` has a ``redis-cli SUBSCRIBE`` follow the group's keep-alive map while the
keep-alive is on, as a Go pulse sink's replica does (the refresh then publishes a message per
consumer).

``--baseline SRC`` runs everything a second time on another checkout's ``src`` (e.g. a
worktree of an older commit) and prints both. Without ``--url`` it starts a private
redis-server (the tests' helper). ``--notes`` appends the results to ``benchmarks/NOTES.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._server import redis_url

__all__ = ["main"]

_ROOT = Path(__file__).resolve().parent.parent
_OWN = Counter({"info": 1, "config|resetstat": 1})
LAYOUTS = {"1000x1": (1000, 1), "100x10": (100, 10)}


def _with(url: str, **query: Any) -> str:
    sep = "&" if "?" in url else "?"
    return url + sep + "&".join(f"{key}={value}" for key, value in query.items())


def _calls(stats: dict[str, dict[str, Any]]) -> Counter[str]:
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})


async def idle_cost(
    url: str, streams: int, per_stream: int, seconds: float, settle: float, keepalive: bool
) -> dict[str, Any]:
    """CPU share and Redis commands of ``streams * per_stream`` idle group subscriptions."""
    import anyio
    import redis.asyncio as aioredis

    import streamsink
    from streamsink import SubscriberOptions

    run = uuid.uuid4().hex[:8]
    options = SubscriberOptions(group="bench")
    conn = streamsink.connect(_with(url, pulse_keepalive=str(keepalive).lower()))
    async with conn as backend, anyio.create_task_group() as tasks:
        subscriber = backend.new_subscriber(options)
        stop, opened, count = anyio.Event(), anyio.Event(), 0

        async def hold(stream: str) -> None:
            nonlocal count
            async with subscriber.subscribe(stream):
                count += 1
                if count == streams * per_stream:
                    opened.set()
                await stop.wait()

        started = time.monotonic()
        for i in range(streams):
            for _ in range(per_stream):
                tasks.start_soon(hold, f"bench/idle-{run}-{i}")
        await opened.wait()
        open_seconds = time.monotonic() - started
        await anyio.sleep(settle)  # past the first looks and the keep-alives' first refresh
        async with aioredis.Redis.from_url(url, protocol=2) as admin:
            await admin.config_resetstat()
            cpu, wall = time.process_time(), time.monotonic()
            await anyio.sleep(seconds)
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
            calls = _calls(await admin.info("commandstats")) - _OWN
            clients = int((await admin.info("clients"))["connected_clients"])
        stop.set()
    return {
        "subscriptions": streams * per_stream,
        "open_seconds": round(open_seconds, 2),
        "cpu_percent": round(100 * cpu / wall, 2),
        "commands_per_second": round(sum(calls.values()) / wall, 1),
        "by_command": {name: round(n / wall, 2) for name, n in calls.most_common()},
        "clients": clients,
    }


async def crash_latency(url: str, trials: int, grace: float) -> dict[str, Any]:
    """Seconds past ``grace`` until a dead consumer's entry reaches an idle subscription."""
    import anyio
    import redis.asyncio as aioredis

    import streamsink
    from streamsink import StreamEvent, SubscriberOptions

    run = uuid.uuid4().hex[:8]
    group = "crash"
    options = SubscriberOptions(group=group, ack_grace_period=grace)
    late: list[float] = []
    async with (
        streamsink.connect(url) as backend,
        aioredis.Redis.from_url(url, protocol=2) as raw,
    ):
        subscriber = backend.new_subscriber(options)
        # An entry in the streams' own format, written once where nobody reads it.
        sent = await backend.sink.send(StreamEvent("bench", "r", f"crash-{run}", payload=0))
        ((_, fields),) = await raw.xrange(f"pulse:stream:{sent.stream_id}", "-", "+")

        async def trial(i: int) -> None:
            stream = f"bench/crash-{run}-{i}"
            key = f"pulse:stream:{stream}"
            async with subscriber.subscribe(stream) as events:
                await anyio.sleep(random.uniform(1.0, 1.0 + 2 * grace))  # any phase of the looks
                # A consumer that never acks takes a new entry; in one MULTI, so that the
                # subscription's blocked read does not get it first.
                pipe = raw.pipeline(transaction=True)
                pipe.xadd(key, fields)
                pipe.xreadgroup(group, f"dead-{i}", {key: ">"}, count=1)
                await pipe.execute()
                taken = time.monotonic()
                async for _event in events:
                    late.append(time.monotonic() - taken - grace)
                    break
            await raw.xgroup_delconsumer(key, group, f"dead-{i}")

        with anyio.fail_after(4 * grace + 30):
            async with anyio.create_task_group() as tasks:
                for i in range(trials):
                    tasks.start_soon(trial, i)
    late.sort()
    return {
        "trials": len(late),
        "grace": grace,
        "late_min": round(late[0], 3),
        "late_median": round(statistics.median(late), 3),
        "late_max": round(late[-1], 3),
    }


def _child(args: argparse.Namespace) -> int:
    import anyio

    if args.child == "crash":
        result = anyio.run(crash_latency, args.url, args.trials, args.grace)
    else:
        streams, per_stream = LAYOUTS[args.child]
        result = anyio.run(
            idle_cost, args.url, streams, per_stream, args.seconds, args.settle, args.keepalive
        )
    print(json.dumps(result))
    return 0


def _spawn(src: Path, url: str, what: str, args: argparse.Namespace, **more: Any) -> Any:
    command = [sys.executable, "-m", "benchmarks.idle_groups", "--url", url, "--child", what]
    command += ["--seconds", str(args.seconds), "--settle", str(args.settle)]
    command += ["--trials", str(args.trials), "--grace", str(args.grace)]
    if more.get("keepalive"):
        command.append("--keepalive")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(_ROOT)])}
    done = subprocess.run(command, env=env, cwd=_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} on {src} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def _replica(url: str, on: bool) -> Iterator[None]:
    """A subscriber on the benchmark group's keep-alive channel (pulse's replicas), if ``on``."""
    if not on:
        yield
        return
    channel = "map:sink:bench:keepalive:updates"
    command = ["redis-cli", "-u", url, "SUBSCRIBE", channel]
    with subprocess.Popen(command, stdout=subprocess.DEVNULL) as follower:
        try:
            yield
        finally:
            follower.terminate()


def _rev(src: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    dirty = subprocess.run(
        ["git", "-C", str(src), "status", "--porcelain", "--", "."],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def _report(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| code | layout | pulse_keepalive | CPU % of a core | Redis commands/s | clients |",
        "|---|---|---|---:|---:|---:|",
    ]
    for code, runs in results.items():
        for name, run in runs.items():
            if name == "crash":
                continue
            layout, keepalive = name.split("/")
            lines.append(
                f"| {code} | {layout} | {keepalive} | {run['cpu_percent']:.2f} | "
                f"{run['commands_per_second']:.1f} | {run['clients']} |"
            )
    lines += ["", "Commands/s by command:"]
    for code, runs in results.items():
        for name, run in runs.items():
            if name != "crash":
                top = ", ".join(f"{k} {v:g}" for k, v in list(run["by_command"].items())[:6])
                lines.append(f"- {code} {name}: {top}")
    lines += ["", "Redelivery after a consumer crash (seconds past the grace period):", ""]
    lines += [
        "| code | trials | grace (s) | min | median | max |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for code, runs in results.items():
        c = runs["crash"]
        lines.append(
            f"| {code} | {c['trials']} | {c['grace']:g} | {c['late_min']:.3f} | "
            f"{c['late_median']:.3f} | {c['late_max']:.3f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.idle_groups")
    parser.add_argument("--url", help="a real Redis (default: a private redis-server)")
    parser.add_argument("--baseline", type=Path, help="another checkout's src to compare with")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured interval (s)")
    parser.add_argument("--settle", type=float, default=15.0, help="wait before measuring (s)")
    parser.add_argument("--trials", type=int, default=10, help="crash redeliveries")
    parser.add_argument("--grace", type=float, default=2.0, help="grace period of those (s)")
    parser.add_argument("--notes", action="store_true", help="append to benchmarks/NOTES.md")
    parser.add_argument(
        "--layouts", default=",".join(LAYOUTS), help=f"which of {', '.join(LAYOUTS)}"
    )
    parser.add_argument(
        "--keepalives", default="false,true", help="pulse_keepalive settings to measure"
    )
    parser.add_argument(
        "--pulse-replica", action="store_true", help="a subscriber on the keep-alive map"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--keepalive", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)
    sources = {f"this ({_rev(_ROOT / 'src')})": _ROOT / "src"}
    if args.baseline:
        sources = {f"baseline ({_rev(args.baseline)})": args.baseline.resolve(), **sources}
    results: dict[str, dict[str, Any]] = {}
    with redis_url(args.url) as url:
        for code, src in sources.items():
            runs = results[code] = {}
            for layout in args.layouts.split(","):
                for keepalive in (k == "true" for k in args.keepalives.split(",")):
                    name = f"{layout}/{str(keepalive).lower()}"
                    with _replica(url, keepalive and args.pulse_replica):
                        runs[name] = _spawn(src, url, layout, args, keepalive=keepalive)
                    print(f"{code} {name}: {json.dumps(runs[name])}", flush=True)
            runs["crash"] = _spawn(src, url, "crash", args)
            print(f"{code} crash: {json.dumps(runs['crash'])}", flush=True)
    lines = _report(results)
    print("\n".join(lines))
    if args.notes:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        head = [
            "",
            f"## Idle group subscriptions ({stamp})",
            "",
            f"`python -m benchmarks.idle_groups` ({args.seconds:g} s measured after "
            f"{args.settle:g} s; 1,000 idle auto-mode group subscriptions in one process; "
            "Redis commands from `INFO commandstats`, inside scripts included).",
            "",
        ]
        with (_ROOT / "benchmarks" / "NOTES.md").open("a") as notes:
            notes.write("\n".join([*head, *lines]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
