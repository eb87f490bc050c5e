"""The bar chart beside the report: throughput per work item and latency, per system."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ._measure import Latency, Rate, Sample, spread

__all__ = ["draw"]

_COLOURS = {"raw": "#9e9e9e", "streamsink": "#1f77b4", "faststream": "#ff7f0e"}
_RATE_ROWS = [
    ("redis", "send-seq"),
    ("redis", "send-64"),
    ("redis", "send-batch"),
    ("redis", "consume"),
    ("redis", "manual-seq"),
    ("redis", "manual-64"),
    ("nats", "send-seq"),
    ("nats", "send-64"),
    ("nats", "send-batch"),
    ("nats", "consume"),
    ("memory", "e2e"),
]
_LATENCY_ROWS = [("redis", "latency"), ("nats", "latency"), ("memory", "latency")]


def _ran(
    samples: Mapping[str, Sequence[Sample]], rows: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The rows some system ran (a run without NATS draws no empty NATS rows)."""
    return [
        (backend, work)
        for backend, work in rows
        if any(samples.get(f"{backend}/{system}/{work}") for system in _COLOURS)
    ]


def _rate(samples: Mapping[str, Sequence[Sample]], key: str) -> float | None:
    got = [s.per_second for s in samples.get(key, ()) if isinstance(s, Rate)]
    return spread(got).median if got else None


def _latency(samples: Mapping[str, Sequence[Sample]], key: str) -> tuple[float, float] | None:
    got = [s for s in samples.get(key, ()) if isinstance(s, Latency)]
    if not got:
        return None
    return spread([s.p50 for s in got]).median, spread([s.p99 for s in got]).median


def draw(samples: Mapping[str, Sequence[Sample]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(_COLOURS)
    rate_rows, latency_rows = _ran(samples, _RATE_ROWS), _ran(samples, _LATENCY_ROWS)
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 9), gridspec_kw={"height_ratios": [3, 1.3]}
    )
    width = 0.27
    for row, (backend, work) in enumerate(rate_rows):
        for col, system in enumerate(systems):
            value = _rate(samples, f"{backend}/{system}/{work}")
            if value is None:
                continue
            y = row + (col - 1) * width
            top.barh(y, value, height=width, color=_COLOURS[system])
            top.text(value, y, f" {value:,.0f}", va="center", fontsize=7)
    top.set_yticks(range(len(rate_rows)), [f"{b}: {w}" for b, w in rate_rows])
    top.invert_yaxis()
    top.set_xlabel("events per second (higher is better)")
    top.set_title("Throughput (median of interleaved passes)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=_COLOURS[s]) for s in systems]
    top.legend(handles, systems, loc="upper right")

    labels = []
    for row, (backend, work) in enumerate(latency_rows):
        for col, system in enumerate(systems):
            value = _latency(samples, f"{backend}/{system}/{work}")
            if value is None:
                continue
            y = row + (col - 1) * width
            p50, p99 = value
            bottom.barh(y, p99, height=width, color=_COLOURS[system], alpha=0.35)
            bottom.barh(y, p50, height=width, color=_COLOURS[system])
            bottom.text(p99, y, f" p50 {p50:,.0f} / p99 {p99:,.0f} µs", va="center", fontsize=7)
        labels.append(f"{backend}: 1,000 ev/s")
    bottom.set_yticks(range(len(latency_rows)), labels)
    bottom.invert_yaxis()
    bottom.set_xlabel("end-to-end latency, µs (solid p50, light p99; lower is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
