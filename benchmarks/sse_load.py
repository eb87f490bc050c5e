"""SSE load on one gateway process: ``python -m benchmarks.sse_load [--url URL] [--clients 1000]
[--streams 100] [--rate 1000] [--seconds 10] [--burst 5] [--notes]``.

One ``streamsink serve`` process (uvicorn) on a private redis-server (or ``--url``); ``--clients``
SSE clients (aiohttp) in a separate process, spread evenly over ``--streams`` streams; a producer
in this process publishing ``--rate`` events/s round-robin over the streams, each payload
carrying its publish time (``time.time_ns()``: the processes share the wall clock, not a
``perf_counter``). Measured over ``--seconds`` of steady load: the gateway's Redis connections
(``CLIENT LIST``, matched to the gateway's sockets), publish -> client latency p50/p99, the
gateway's CPU (% of one core, ``/proc/<pid>/stat``). Then a mass reconnect: every client drops,
``--burst`` events per stream are published meanwhile, and all come back at once, each with its
``Last-Event-ID``: the Redis commands that cost (``INFO commandstats`` delta) and whether every
client resumed with no gap and no duplicate, checked against the ids the producer got back.

Prints a markdown table; with ``--notes`` also appends it, dated, to ``benchmarks/NOTES.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import orjson

from ._server import redis_url

__all__ = ["main"]

NOTES = Path(__file__).with_name("NOTES.md")


def _raise_fd_limit() -> None:
    """1,000 streams are 1,000 sockets per process (and the gateway's Redis connections)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _percentile(values: list[int], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


# -- the client process -------------------------------------------------------------------------


class _Client:
    __slots__ = ("ids", "last_id", "stream", "task", "url")

    def __init__(self, url: str, stream: str) -> None:
        self.url, self.stream = url, stream
        self.ids: list[str] = []
        self.last_id: str | None = None
        self.task: asyncio.Task[None] | None = None


class _Clients:
    """``count`` SSE clients over ``streams``, driven by one-line commands on stdin."""

    def __init__(self, origin: str, streams: list[str], count: int) -> None:
        from urllib.parse import quote

        self.clients = [
            _Client(
                f"{origin}/streams/{quote(streams[i % len(streams)], safe='')}",
                streams[i % len(streams)],
            )
            for i in range(count)
        ]
        self.latencies: list[int] = []
        self.recording = False
        self.opened = 0
        self.failures: Counter[str] = Counter()
        self._opened = asyncio.Event()

    async def _follow(self, client: _Client, session: Any) -> None:
        headers = {"Last-Event-ID": client.last_id} if client.last_id else {}
        try:
            async with session.get(client.url, headers=headers) as response:
                if response.status != 200:
                    self.failures[f"HTTP {response.status}"] += 1
                    return
                self._count_open()
                event_id: str | None = None
                data: bytes | None = None
                async for line in response.content:
                    if line == b"\n":
                        if event_id is not None and data is not None:
                            self._deliver(client, event_id, data)
                        event_id = data = None
                    elif line.startswith(b"id: "):
                        event_id = line[4:-1].decode()
                    elif line.startswith(b"data: "):
                        data = line[6:-1]
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failures[type(exc).__name__] += 1
            self._count_open()

    def _count_open(self) -> None:
        self.opened += 1
        if self.opened >= len(self.clients):
            self._opened.set()

    def _deliver(self, client: _Client, event_id: str, data: bytes) -> None:
        now = time.time_ns()
        client.ids.append(event_id)
        client.last_id = event_id
        if self.recording:
            self.latencies.append(now - orjson.loads(data)["payload"]["sent_ns"])

    async def _open_all(self, session: Any) -> dict[str, Any]:
        self.opened, self._opened = 0, asyncio.Event()
        self.failures.clear()
        started = time.perf_counter()
        for client in self.clients:
            client.task = asyncio.create_task(self._follow(client, session))
        await asyncio.wait_for(self._opened.wait(), 60)
        return {
            "open": self.opened,
            "seconds": time.perf_counter() - started,
            "failed": dict(self.failures),
        }

    async def _drop_all(self) -> dict[str, Any]:
        tasks = [c.task for c in self.clients if c.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return {"dropped": len(tasks)}

    async def _wait(self, counts: dict[str, int], limit: float) -> dict[str, Any]:
        started = time.perf_counter()
        while True:
            behind = sum(1 for c in self.clients if len(c.ids) < counts.get(c.stream, 0))
            elapsed = time.perf_counter() - started
            if not behind or elapsed > limit:
                return {"behind": behind, "seconds": elapsed}
            await asyncio.sleep(0.02)

    def _check(self, expected: dict[str, list[str]]) -> dict[str, Any]:
        result = Counter(clients=len(self.clients))
        for client in self.clients:
            want = expected.get(client.stream, [])
            got = client.ids
            if got == want:
                result["exact"] += 1
                continue
            position = {entry_id: i for i, entry_id in enumerate(want)}
            result["missing"] += len(position.keys() - set(got))
            result["duplicates"] += len(got) - len(set(got))
            known = [position[i] for i in got if i in position]
            result["out_of_order"] += int(known != sorted(known))
        return dict(result)

    def _stats(self) -> dict[str, Any]:
        self.recording = False
        values = self.latencies
        return {
            "deliveries": len(values),
            "p50_ms": _percentile(values, 0.50) / 1e6,
            "p99_ms": _percentile(values, 0.99) / 1e6,
            "max_ms": (max(values) / 1e6) if values else float("nan"),
        }

    async def serve_commands(self) -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=None)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            while True:
                line = await asyncio.to_thread(sys.stdin.readline)
                command, _, argument = line.strip().partition(" ")
                reply: dict[str, Any]
                if command in ("open", "reconnect"):
                    reply = await self._open_all(session)
                elif command == "drop":
                    reply = await self._drop_all()
                elif command == "mark":
                    self.latencies, self.recording = [], True
                    reply = {"marked": True}
                elif command == "stats":
                    reply = self._stats()
                elif command == "wait":
                    spec = json.loads(argument)
                    reply = await self._wait(spec["counts"], spec["timeout"])
                elif command == "check":
                    reply = self._check(orjson.loads(await anyio.Path(argument).read_bytes()))
                else:  # "quit" or end of input
                    await self._drop_all()
                    return
                print(json.dumps(reply), flush=True)


def _clients_main(origin: str, streams_json: str, count: str) -> int:
    _raise_fd_limit()
    asyncio.run(_Clients(origin, json.loads(streams_json), int(count)).serve_commands())
    return 0


# -- the benchmark ------------------------------------------------------------------------------


class _ClientProcess:
    def __init__(self, origin: str, streams: list[str], count: int) -> None:
        command = [
            sys.executable,
            "-m",
            "benchmarks.sse_load",
            "_clients",
            origin,
            json.dumps(streams),
            str(count),
        ]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(
                f"the client process exited ({self.process.wait()}) on {command.split()[0]!r}"
            )
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ask("quit")
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _redis_cpu_seconds(admin: Any) -> float:
    cpu = admin.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def _gateway_redis_connections(admin: Any, gateway_pid: int, redis_port: int) -> int:
    """Connections ``CLIENT LIST`` shows whose client end is a socket of the gateway process."""
    import psutil

    ours = {
        c.laddr.port
        for c in psutil.Process(gateway_pid).net_connections(kind="tcp")
        if c.raddr and c.raddr.port == redis_port
    }
    listed = [c["addr"].rpartition(":")[2] for c in admin.client_list()]
    return sum(1 for port in listed if int(port) in ours)


class _Producer:
    """Publishes round-robin over ``streams`` at ``rate`` events/s, keeping every entry id."""

    def __init__(self, streams: Any, names: list[str], prefix: str) -> None:
        self.streams, self.names, self.prefix = streams, names, prefix
        self.ids: dict[str, list[str]] = {name: [] for name in names}

    async def run(self, rate: float, seconds: float, tasks: int = 4) -> float:
        """Publish for ``seconds``; return the rate achieved."""
        from streamsink import StreamEvent

        sent = 0
        per_task = rate / tasks
        started = time.perf_counter()

        async def one(lane: int) -> None:
            nonlocal sent
            mine = self.names[lane::tasks]
            k = 0
            while (due := k / per_task) < seconds:
                delay = started + due - time.perf_counter()
                if delay > 0:
                    await anyio.sleep(delay)
                name = mine[k % len(mine)]
                event = StreamEvent(
                    "assistant_reply",
                    "run-load",
                    name.removeprefix("session/"),
                    payload={"text": "x" * 40, "sent_ns": time.time_ns()},
                )
                self.ids[name].append((await self.streams.sink.send(event)).entry_id)
                sent += 1
                k += 1

        async with anyio.create_task_group() as tg:
            for lane in range(min(tasks, len(self.names))):
                tg.start_soon(one, lane)
        return sent / (time.perf_counter() - started)

    async def burst(self, per_stream: int) -> None:
        from streamsink import StreamEvent

        for _ in range(per_stream):
            for name in self.names:
                event = StreamEvent(
                    "assistant_reply",
                    "run-load",
                    name.removeprefix("session/"),
                    payload={"text": "burst", "sent_ns": time.time_ns()},
                )
                self.ids[name].append((await self.streams.sink.send(event)).entry_id)

    def counts(self) -> dict[str, int]:
        return {name: len(ids) for name, ids in self.ids.items()}


def _calls(stats: dict[str, dict[str, int]]) -> Counter[str]:
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})


async def measure(url: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import redis
    from tests.web.browser.serve import ServeProcess

    import streamsink

    prefix = f"sse-load-{secrets.token_hex(3)}"
    names = [f"session/{prefix}-{i}" for i in range(args.streams)]
    redis_port = int(url.rsplit(":", 1)[1].split("/")[0])
    admin = redis.Redis.from_url(url, protocol=2)
    gateway = ServeProcess(["--url", url], log_dir=work).start()
    clients = _ClientProcess(gateway.origin, names, args.clients)
    out: dict[str, Any] = {
        "clients": args.clients,
        "streams": args.streams,
        "rate": args.rate,
        "seconds": args.seconds,
        # the machine may be shared: a load above ~0 before the run means the numbers are low
        "load_before": os.getloadavg()[0],
    }
    wait = lambda counts, timeout: clients.ask(  # noqa: E731
        "wait " + json.dumps({"counts": counts, "timeout": timeout})
    )
    ask = anyio.to_thread.run_sync
    try:
        async with streamsink.connect(url) as streams:
            producer = _Producer(streams, names, prefix)
            out["open"] = await ask(clients.ask, "open")
            await producer.run(args.rate, 2.0)  # warm-up, not measured
            await ask(wait, producer.counts(), 30)
            await ask(clients.ask, "mark")
            cpu0, t0 = _cpu_seconds(gateway.pid), time.perf_counter()
            cpu_c0, cpu_p0 = _cpu_seconds(clients.process.pid), _cpu_seconds(os.getpid())
            cpu_r0 = _redis_cpu_seconds(admin)
            admin.config_resetstat()
            async with anyio.create_task_group() as tg:

                async def sample_connections() -> None:
                    await anyio.sleep(args.seconds / 2)
                    out["redis_connections"] = await ask(
                        _gateway_redis_connections, admin, gateway.pid, redis_port
                    )
                    out["redis_clients_total"] = int(admin.info("clients")["connected_clients"])

                tg.start_soon(sample_connections)
                out["achieved_rate"] = await producer.run(args.rate, args.seconds)
            elapsed = time.perf_counter() - t0
            out["gateway_cpu"] = (_cpu_seconds(gateway.pid) - cpu0) / elapsed
            out["clients_cpu"] = (_cpu_seconds(clients.process.pid) - cpu_c0) / elapsed
            out["producer_cpu"] = (_cpu_seconds(os.getpid()) - cpu_p0) / elapsed
            out["redis_cpu"] = (_redis_cpu_seconds(admin) - cpu_r0) / elapsed
            steady = _calls(admin.info("commandstats")) - Counter({"config|resetstat": 1})
            out["steady_commands"] = dict(steady.most_common())
            out["caught_up"] = await ask(wait, producer.counts(), 60)
            out["latency"] = await ask(clients.ask, "stats")

            # Mass reconnect: all drop, events arrive meanwhile, all come back at once.
            out["dropped"] = await ask(clients.ask, "drop")
            await producer.burst(args.burst)
            admin.config_resetstat()
            t1 = time.perf_counter()
            out["reconnect"] = await ask(clients.ask, "reconnect")
            out["reconnect_caught_up"] = await ask(wait, producer.counts(), 60)
            out["reconnect_total_s"] = time.perf_counter() - t1
            await anyio.sleep(1.0)  # the blocking reads that follow the catch-up settle in
            calls = _calls(admin.info("commandstats"))
            calls -= Counter({"info": 1, "config|resetstat": 1})
            out["reconnect_commands"] = dict(calls.most_common())

            await producer.run(args.rate, 2.0)  # live again after the reconnect
            out["final_caught_up"] = await ask(wait, producer.counts(), 60)
            expected = work / "expected.json"
            expected.write_text(json.dumps(producer.ids))
            out["check"] = await ask(clients.ask, f"check {expected}")
            out["published"] = sum(producer.counts().values())
    finally:
        clients.close()
        gateway.stop()
        admin.close()
    return out


def table(r: dict[str, Any]) -> str:
    lat, check, rec = r["latency"], r["check"], r["reconnect"]
    commands = r["reconnect_commands"]
    total = sum(commands.values())
    detail = ", ".join(f"{name} {count}" for name, count in list(commands.items())[:6])
    rows = [
        ("clients / streams", f"{r['clients']:,} / {r['streams']:,}"),
        (
            "load average (1 min) before the run",
            f"{r['load_before']:.2f} on {os.cpu_count()} cores",
        ),
        ("publish rate asked / achieved", f"{r['rate']:,.0f} / {r['achieved_rate']:,.0f} events/s"),
        ("deliveries measured", f"{lat['deliveries']:,}"),
        (
            "publish -> client p50 / p99 / max",
            f"{lat['p50_ms']:.1f} / {lat['p99_ms']:.1f} / {lat['max_ms']:.1f} ms",
        ),
        ("gateway CPU", f"{r['gateway_cpu'] * 100:.0f} % of a core"),
        (
            "CPU of the others: clients / producer / redis-server",
            f"{r['clients_cpu'] * 100:.0f} / {r['producer_cpu'] * 100:.0f} / "
            f"{r['redis_cpu'] * 100:.0f} % of a core",
        ),
        ("gateway Redis connections (CLIENT LIST)", f"{r.get('redis_connections', 'n/a')}"),
        ("first connect: all responses open", f"{r['open']['seconds']:.2f} s"),
        (
            "reconnect: all responses open again",
            f"{rec['seconds']:.2f} s (failed: {rec['failed'] or 'none'})",
        ),
        (
            "reconnect: all caught up",
            f"{r['reconnect_total_s']:.2f} s, {r['reconnect_caught_up']['behind']} behind",
        ),
        (
            "resumed exactly (no gap, no duplicate)",
            f"{check.get('exact', 0):,} / {check['clients']:,}",
        ),
        (
            "missing / duplicates / out of order",
            f"{check.get('missing', 0)} / {check.get('duplicates', 0)} / {check.get('out_of_order', 0)}",
        ),
        (
            "Redis commands of the reconnect",
            f"{total:,}: {total / r['streams']:.1f} per stream, {total / r['clients']:.2f} per client",
        ),
        ("  by command", detail),
    ]
    steady = r["steady_commands"]
    published = r["achieved_rate"] * r["seconds"]
    rows.insert(
        8,
        (
            "Redis commands under steady load, per event published",
            ", ".join(
                f"{name} {count / published:.1f}" for name, count in list(steady.items())[:6]
            ),
        ),
    )
    lines = ["| measure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_clients"]:
        return _clients_main(*argv[1:4])
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sse_load")
    parser.add_argument(
        "--url", help="a real Redis, redis://host:port/db (default: a private redis-server)"
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1000.0, help="events/s over all streams")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured steady load")
    parser.add_argument(
        "--burst", type=int, default=5, help="events per stream while clients are away"
    )
    parser.add_argument(
        "--notes", action="store_true", help="append the table to benchmarks/NOTES.md"
    )
    args = parser.parse_args(argv)
    _raise_fd_limit()  # the gateway and client processes inherit it
    with redis_url(args.url) as url, tempfile.TemporaryDirectory() as work:
        result = anyio.run(measure, url, args, Path(work))
    text = table(result)
    print(text)
    if args.notes:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
        with NOTES.open("a") as notes:
            notes.write(
                f"\n## SSE load, {stamp}\n\n`python -m benchmarks.sse_load` "
                f"({result['clients']} clients, {result['streams']} streams, "
                f"{result['rate']:g} events/s). Each SSE response is its own fan-out reader "
                "(one blocking read per response); shared reads per stream land later, and "
                "these are the numbers before them.\n\n" + text + "\n"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
