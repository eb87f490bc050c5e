"""Helpers of the fault suite: worker processes, their records, the accounting, and figures."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

__all__ = [
    "FIGURES_ENV",
    "ROOT",
    "Accounting",
    "ConsumerLog",
    "Processed",
    "ProducerLog",
    "Worker",
    "account",
    "record_figures",
    "start_consumers",
    "start_producers",
    "wait_until",
]

ROOT = Path(__file__).resolve().parents[2]
FIGURES_ENV = "STREAMSINK_FAULT_FIGURES"
# An ignored path: the tests never write into tracked files.
DEFAULT_FIGURES = ROOT / "build" / "fault-figures.json"
RUN_STARTED = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Worker:
    """One ``python -m tests.faults.workers ...`` process, its output files, and its end."""

    def __init__(self, directory: Path, name: str, *args: str) -> None:
        self.name = name
        self.out = directory / f"{name}.out"
        self.stats_path = directory / f"{name}.stats.json"
        self.log = directory / f"{name}.log"
        self.out.touch()
        argv = [sys.executable, "-m", "tests.faults.workers", *args, "--out", str(self.out)]
        if args[0] in ("consumer", "pulse"):
            argv += ["--stats", str(self.stats_path)]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def lines(self) -> list[str]:
        return self.out.read_text(encoding="utf-8").splitlines()

    def ready(self) -> bool:
        return "ready" in self.lines()

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (a consumer closes its subscription and writes its statistics); wait."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.name} did not stop within {timeout} s\n{self.tail()}"
            ) from None

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} still running after {timeout} s\n{self.tail()}"
            ) from None

    def statistics(self) -> dict[str, Any]:
        """The consumer's report (written on SIGTERM)."""
        if not self.stats_path.exists():
            raise AssertionError(f"{self.name} wrote no statistics\n{self.tail()}")
        return dict(json.loads(self.stats_path.read_text(encoding="utf-8")))

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return f"--- {self.name} (pid {self.pid}) log ---\n" + "\n".join(text.splitlines()[-lines:])


def stop_all(workers: Iterable[Worker]) -> None:
    """Kill whatever is still running (test teardown); only our own children, by pid."""
    for worker in workers:
        if worker.alive():
            worker.kill()


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, *, every: float = 0.05
) -> float:
    """Poll ``predicate`` until it holds; return the seconds it took.

    :raises AssertionError: it did not hold within ``timeout``.
    """
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)
    return time.monotonic() - started


def start_consumers(workers: list[Worker], directory: Path, count: int, *args: str) -> list[Worker]:
    """``count`` consumer processes (``consumer1``...) run with ``args``, added to ``workers``
    (which the test's teardown stops), once every one is ready."""
    consumers = [Worker(directory, f"consumer{i}", "consumer", *args) for i in range(1, count + 1)]
    workers += consumers
    wait_until(lambda: all(c.ready() for c in consumers), 30, "consumers to start")
    return consumers


def start_producers(workers: list[Worker], directory: Path, count: int, *args: str) -> list[Worker]:
    """``count`` producer processes (``producer1``..., each told its number) run with ``args``,
    added to ``workers``; they start sending at once."""
    producers = [
        Worker(directory, f"producer{i}", "producer", *args, "--producer", str(i))
        for i in range(1, count + 1)
    ]
    workers += producers
    return producers


# -- the records ---------------------------------------------------------------------------------


@attrs.frozen
class ProducerLog:
    """What one producer process wrote: returned sends, failed sends, and whether it finished."""

    returned: dict[str, str]  # seq -> entry id, for every send that returned
    failed: list[str]  # seqs of sends that raised (may or may not be written)
    done: bool

    @classmethod
    def read(cls, worker: Worker) -> ProducerLog:
        returned: dict[str, str] = {}
        failed: list[str] = []
        done = False
        for line in worker.lines():
            kind, _, rest = line.partition(" ")
            if kind == "ok":
                seq, entry_id = rest.split()
                returned[seq] = entry_id
            elif kind == "err":
                failed.append(rest.split()[0])
            elif kind == "done":
                done = True
        return cls(returned, failed, done)


@attrs.frozen
class Processed:
    """One event a consumer's handler finished."""

    seq: str
    entry_id: str
    delivery_count: int
    at: float  # unix time
    consumer: str


@attrs.frozen
class ConsumerLog:
    """What one consumer process wrote: its name and every event its handler finished."""

    consumer: str
    processed: list[Processed]

    @classmethod
    def read(cls, worker: Worker) -> ConsumerLog:
        consumer = ""
        processed: list[Processed] = []
        for line in worker.lines():
            parts = line.split()
            if parts[0] == "consumer":
                consumer = parts[1]
            elif parts[0] != "ready":
                seq, entry_id, count, at = parts
                processed.append(Processed(seq, entry_id, int(count), float(at), consumer))
        return cls(consumer, processed)


@attrs.frozen
class Accounting:
    """Every returned send against every processed event (the definitions are in
    docs/reliability.md, "How events are counted")."""

    sent: int  # sends that returned
    failed_sends: int  # sends that raised
    unconfirmed_written: int  # failed sends whose event was consumed anyway (written after all)
    processed: int  # handler runs, duplicates included
    unique: int  # distinct events processed
    lost: list[str]  # returned sends never processed
    duplicates: int  # processed - unique
    redelivered_processed: int  # handler runs of deliveries with delivery_count > 1
    first_delivery_twice: list[str]  # events processed twice with delivery_count 1 (must be [])
    unknown: list[str]  # processed events nobody sent (must be [])
    redelivered_without_first: int  # events whose every processing was a redelivery

    def as_figures(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "failed_sends": self.failed_sends,
            "unconfirmed_written": self.unconfirmed_written,
            "processed": self.processed,
            "unique": self.unique,
            "lost": len(self.lost),
            "duplicates": self.duplicates,
            "redelivered": self.redelivered_processed,
            "redelivered_without_first": self.redelivered_without_first,
        }


def account(producers: Iterable[ProducerLog], consumers: Iterable[ConsumerLog]) -> Accounting:
    returned: dict[str, str] = {}
    failed: set[str] = set()
    for log in producers:
        returned.update(log.returned)
        failed.update(log.failed)
    by_seq: defaultdict[str, list[Processed]] = defaultdict(list)
    for consumer in consumers:
        for item in consumer.processed:
            by_seq[item.seq].append(item)
    processed = sum(len(items) for items in by_seq.values())
    first_twice = sorted(
        seq for seq, items in by_seq.items() if sum(i.delivery_count == 1 for i in items) > 1
    )
    return Accounting(
        sent=len(returned),
        failed_sends=len(failed),
        unconfirmed_written=len(failed & by_seq.keys()),
        processed=processed,
        unique=len(by_seq),
        lost=sorted(set(returned) - by_seq.keys()),
        duplicates=processed - len(by_seq),
        redelivered_processed=sum(
            1 for items in by_seq.values() for item in items if item.delivery_count > 1
        ),
        first_delivery_twice=first_twice,
        unknown=sorted(set(by_seq) - set(returned) - failed),
        redelivered_without_first=sum(
            1 for items in by_seq.values() if all(i.delivery_count > 1 for i in items)
        ),
    )


def sum_statistics(reports: Iterable[dict[str, Any]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for report in reports:
        total.update(report["statistics"])
    return total


# -- figures ---------------------------------------------------------------------------------------


def _git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def record_figures(test: str, figures: dict[str, Any]) -> None:
    """Store one fault test's figures in ``build/fault-figures.json`` (``$STREAMSINK_FAULT_FIGURES``
    names another file; empty disables), keyed by test, with the run they come from."""
    target = os.environ.get(FIGURES_ENV, str(DEFAULT_FIGURES))
    if not target:
        return
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    run = {
        "started": RUN_STARTED,
        "commit": _git_commit(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    if data.get("run", {}).get("started") != RUN_STARTED:
        data = {"run": run, "tests": {}}  # a new run replaces the figures of the last one
    data["tests"][test] = {"recorded": datetime.now(UTC).strftime("%H:%M:%SZ"), **figures}
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
