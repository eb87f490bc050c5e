"""The fan-out benchmark's pure helpers: reader cap, statistics deltas, the table, the report
section and how it is spliced into docs/benchmarks.md. No Redis needed."""

from __future__ import annotations

import pytest
from benchmarks._fanout_report import SECTION_TITLE, extract, render_section, splice
from benchmarks._fanout_stats import (
    FanoutResult,
    calls_of,
    commands_delta,
    count_connections,
    markdown_table,
    reader_cap,
    readers_per_stream,
    target_lines,
)


def _row(**kw: object) -> FanoutResult:
    base: dict[str, object] = dict(
        system="s", label="S", readers=10_000, streams=1_000, connections=3, reading=2,
        setup_s=1.0, rss_mb=10.0, idle_cpu_pct=1.0, idle_redis_cpu_pct=0.5,
        idle_cmds_per_s=3.0, publish_rate=1000.0, p50_ms=1.0, p99_ms=5.0,
        delivered=100, expected=100, duplicates=0,
    )  # fmt: skip
    base.update(kw)
    return FanoutResult(**base)  # type: ignore[arg-type]


def test_reader_cap_is_bound_by_the_smaller_of_fds_and_maxclients() -> None:
    assert reader_cap(10_000, fd_soft=20_000, maxclients=11_000) == 10_000
    assert reader_cap(10_000, fd_soft=4_096, maxclients=11_000) == 4_096 - 200
    assert reader_cap(10_000, fd_soft=20_000, maxclients=1_000, reserve=100) == 900
    assert reader_cap(10, fd_soft=50, maxclients=50) == 1  # never below one reader
    with pytest.raises(ValueError, match="requested readers"):
        reader_cap(0, fd_soft=1_000, maxclients=1_000)


def test_readers_per_stream_spreads_round_robin() -> None:
    assert readers_per_stream(10_000, 1_000) == [10] * 1_000
    assert readers_per_stream(7, 3) == [3, 2, 2]
    assert readers_per_stream(2, 4) == [1, 1, 0, 0]
    with pytest.raises(ValueError, match="streams >= 1"):
        readers_per_stream(5, 0)


def test_commands_delta_leaves_out_control_commands_and_sorts() -> None:
    stats = {
        "cmdstat_xread": {"calls": 2_000, "usec": 1},
        "cmdstat_evalsha": {"calls": 50, "usec": 1},
        "cmdstat_info": {"calls": 3, "usec": 1},
        "cmdstat_config|resetstat": {"calls": 1, "usec": 1},
        "cmdstat_client|list": {"calls": 1, "usec": 1},
    }
    calls = calls_of(stats)
    assert calls["xread"] == 2_000
    assert calls["config|resetstat"] == 1
    total, each = commands_delta({"xread": 1_000}, calls, 5.0)
    assert each == {"xread": 200.0, "evalsha": 10.0}
    assert list(each) == ["xread", "evalsha"]
    assert total == 210.0
    with pytest.raises(ValueError, match="seconds must be > 0"):
        commands_delta({}, calls, 0)


def test_count_connections_excludes_the_control_connection() -> None:
    clients = [
        {"id": "7", "cmd": "client|list", "flags": "N"},  # the control connection itself
        {"id": "8", "cmd": "xread", "flags": "b"},
        {"id": "9", "cmd": "xreadgroup", "flags": "N"},
        {"id": "10", "cmd": "evalsha", "flags": "N"},  # a publisher's connection
        {"id": "11", "cmd": "evalsha", "flags": "b"},  # blocked: reading whatever it ran last
    ]
    assert count_connections(clients, own_id=7) == (4, 3)


def test_table_marks_undelivered_events_and_unavailable_systems() -> None:
    idle = _row(
        label="idle", idle_only=True, publish_rate=None, p50_ms=None, p99_ms=None,
        delivered=None, expected=None,
    )  # fmt: skip
    rows = [
        _row(label="ok"),
        _row(label="late", delivered=90, duplicates=2, errors=3),
        idle,
        FanoutResult("x", "shared", available=False, note="not available in this tree"),
    ]
    table = markdown_table(rows)
    header_cells = table[0].count("|")
    assert all(line.count("|") == header_cells for line in table)
    assert "| 100 / 100 |" in table[2]
    assert "90 / 100 (**10 not in time**), 2 dup; 3 read errors retried" in table[3]
    assert "| - ms | - ms | - |" in table[4]
    assert "| shared | not available in this tree |" in table[5]


def test_target_lines_judge_fanout_rows_only() -> None:
    rows = [
        _row(label="good"),
        _row(label="capped", readers=4_000),  # fewer readers than asked: cannot meet it
        _row(label="slow", p99_ms=30.0, idle_cpu_pct=5.0, reading=10_000),
        _row(label="lost", delivered=99),
        _row(label="groups", idle_only=True),
    ]
    lines = target_lines(rows, readers=10_000, streams=1_000)
    assert len(lines) == 4
    good, capped, slow, lost = lines
    assert good.count(": met") == 3
    assert "10,000 readers: NOT met" in capped
    assert slow.count("NOT met") == 3
    assert "delivered: NOT met" in lost


def test_section_round_trips_through_json_and_splices_idempotently() -> None:
    rows = [FanoutResult.from_json(_row().to_json() | {"unknown": 1})]
    meta = {
        "readers": 10_000, "streams": 1_000, "rate": 1000.0, "seconds": 5.0, "idle": 5.0,
        "cap_note": "per-connection readers: 10,000 of 10,000", "quick": False,
    }  # fmt: skip
    section = render_section(rows, meta)
    assert section.startswith(SECTION_TITLE + "\n")
    assert "Per-connection readers: 10,000 of 10,000." in section

    report = "# Benchmarks\n\n## Every scenario\n\ny\n\n![chart](c.png)\n\n## Notes\n\nz\n"
    once = splice(report, section)
    assert once.index("![chart]") < once.index(SECTION_TITLE) < once.index("## Notes")
    assert splice(once, section) == once
    assert extract(once) == section

    newer = section.replace("10,000 of 10,000", "9,000 of 10,000")
    replaced = splice(once, newer)
    assert extract(replaced) == newer
    assert replaced.count(SECTION_TITLE) == 1
    assert replaced.endswith("## Notes\n\nz\n")

    # A report without "Every scenario" gets the section at the end, also idempotently.
    tail = splice("# Benchmarks\n", section)
    assert tail.endswith(section)
    assert splice(tail, section) == tail
    assert extract("# Benchmarks\n") is None
