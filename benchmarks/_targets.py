"""The ratios the issue sets as targets, and the other comparisons the report shows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ._measure import Latency, Rate, Sample, Spread, spread

__all__ = ["Comparison", "Outcome", "comparisons", "evaluate"]

Metric = Literal["rate", "p50", "p99"]


@dataclass(frozen=True)
class Comparison:
    """``numerator / denominator`` of ``metric``, per repeat. ``bound`` (None: informational) is
    a floor for rates and a ceiling for latencies."""

    label: str
    numerator: str
    denominator: str
    metric: Metric = "rate"
    bound: float | None = None
    group: str = "target"  # target | faststream | nats | info | cluster

    def met(self, ratio: float) -> bool | None:
        if self.bound is None:
            return None
        return ratio >= self.bound if self.metric == "rate" else ratio <= self.bound


@dataclass(frozen=True)
class Outcome:
    comparison: Comparison
    ratio: Spread | None  # None: a side did not run

    @property
    def met(self) -> bool | None:
        return None if self.ratio is None else self.comparison.met(self.ratio.median)


def _value(sample: Sample, metric: Metric) -> float:
    if isinstance(sample, Rate):
        return sample.per_second
    assert isinstance(sample, Latency)
    return sample.p50 if metric == "p50" else sample.p99


def _c(label: str, num: str, den: str, metric: Metric = "rate", bound: float | None = None,
       group: str = "target") -> Comparison:  # fmt: skip
    return Comparison(label, num, den, metric, bound, group)


def comparisons() -> list[Comparison]:
    r, m = "redis/raw/", "memory/raw/"
    s, sm, f = "redis/streamsink/", "memory/streamsink/", "redis/faststream/"
    result = [
        _c("64 concurrent send / raw pipelined XADD", s + "send-64", r + "send-batch", bound=0.8),
        _c("sequential send / raw sequential XADD", s + "send-seq", r + "send-seq", bound=0.9),
        _c("send_many(100) / raw pipelined XADD", s + "send-batch", r + "send-batch", bound=0.85),
        _c(
            "auto-mode consume / raw XREADGROUP + batch XACK",
            s + "consume",
            r + "consume",
            bound=0.8,
        ),
        _c(
            "manual, awaited ack() each / raw awaited XACK each",
            s + "manual-64",
            r + "manual-seq",
            bound=5.0,
        ),
        _c("latency p50 / raw (redis)", s + "latency", r + "latency", "p50", 1.25),
        _c("latency p99 / raw (redis)", s + "latency", r + "latency", "p99", 1.5),
        _c("memory:// send -> subscription / anyio + orjson", sm + "e2e", m + "e2e", bound=0.8),
        _c("latency p50 / raw (memory)", sm + "latency", m + "latency", "p50", 2.0),
        _c("latency p99 / raw (memory)", sm + "latency", m + "latency", "p99", 2.5),
    ]
    for work, label in [
        ("send-seq", "sequential send"),
        ("send-64", "64 concurrent send"),
        ("send-batch", "batch of 100"),
        ("consume", "auto-ack consume"),
        ("manual-64", "manual ack, 64 workers"),
    ]:
        result.append(
            _c(f"{label} / FastStream", s + work, f + work, bound=1.0, group="faststream")
        )
    result += [
        _c("latency p50 / FastStream", s + "latency", f + "latency", "p50", 1.0, "faststream"),
        _c("latency p99 / FastStream", s + "latency", f + "latency", "p99", 1.0, "faststream"),
        _c(
            "64 concurrent send / raw 64 concurrent XADD",
            s + "send-64",
            r + "send-64",
            group="info",
        ),
        _c("manual, 64 workers / raw, 64 workers", s + "manual-64", r + "manual-64", group="info"),
    ]
    nr, ns = "nats/raw/", "nats/streamsink/"
    for work, label in [
        ("send-seq", "sequential send / raw awaited publish"),
        ("send-64", "64 concurrent send / raw 64 tasks awaiting publish"),
        ("send-batch", "send_many(100) / raw 100 x publish_async"),
        ("consume", "auto-mode consume / raw pull fetch(100) + ack each"),
    ]:
        result.append(_c(f"NATS {label}", ns + work, nr + work, group="nats"))
    result += [
        _c("NATS latency p50 / raw", ns + "latency", nr + "latency", "p50", group="nats"),
        _c("NATS latency p99 / raw", ns + "latency", nr + "latency", "p99", group="nats"),
        _c("NATS sequential send / Redis sequential send", ns + "send-seq", s + "send-seq",
           group="nats"),
        _c("NATS auto-mode consume / Redis auto-mode consume", ns + "consume", s + "consume",
           group="nats"),
    ]  # fmt: skip
    fr, fs = "fakeredis/raw/", "fakeredis/streamsink/"
    for work in ("send-seq", "send-64", "send-batch", "consume"):
        result.append(_c(f"fakeredis {work} / raw fakeredis", fs + work, fr + work, group="info"))
    result.append(
        _c("fakeredis manual-64 / raw fakeredis manual-seq", fs + "manual-64", fr + "manual-seq",
           group="info")
    )  # fmt: skip
    result.append(
        _c("fakeredis latency p50 / raw fakeredis", fs + "latency", fr + "latency", "p50",
           group="info")
    )  # fmt: skip
    return result


def evaluate(items: Sequence[Comparison], samples: Mapping[str, Sequence[Sample]]) -> list[Outcome]:
    """Each comparison's ratio per repeat (the two sides of one repeat ran back to back in the
    same pass), summarised as median, min and max."""
    outcomes = []
    for item in items:
        num, den = samples.get(item.numerator), samples.get(item.denominator)
        if not num or not den:
            outcomes.append(Outcome(item, None))
            continue
        ratios = [
            _value(a, item.metric) / _value(b, item.metric) for a, b in zip(num, den, strict=False)
        ]
        outcomes.append(Outcome(item, spread(ratios)))
    return outcomes
