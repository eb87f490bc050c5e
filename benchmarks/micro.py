"""Micro-measurements behind the cost remarks in the hot-path code: ``python -m benchmarks.micro``.

Each line is the best of 7 timeit repeats, in ns per call; the pairs compare what the code does
with what it replaced.
"""

from __future__ import annotations

import asyncio
import timeit
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import anyio
import attrs
from anyio.lowlevel import checkpoint

from streamsink import StreamEvent, StreamSink, decode_envelope
from streamsink._envelope import decode_entry, format_timestamp, now_timestamp
from streamsink._events import decoded_event
from streamsink.backend import Entry

__all__ = ["main"]

N = 100_000


def _best(call: Callable[[], object]) -> float:
    return min(timeit.repeat(call, number=N, repeat=7)) / N * 1e9


@attrs.frozen
class _AttrsEntry:
    """``Entry`` as attrs' own frozen ``__init__`` builds it."""

    stream_id: str
    name: str
    payload: bytes
    topic: str | None = None


async def _awaited(make: Callable[[], Awaitable[object]]) -> float:
    best = float("inf")
    for _ in range(7):
        start = asyncio.get_running_loop().time()
        for _ in range(N):
            await make()
        best = min(best, asyncio.get_running_loop().time() - start)
    return best / N * 1e9


# A usual envelope as a sink writes it (the decoder's fast path), and one with server_data and
# a Go nanosecond timestamp (its general path).
_USUAL = (
    b'{"type":"tool_end","event_key":"evt-1","run_id":"run-123","session_id":"session-123",'
    b'"timestamp":"2026-11-26T17:19:26.123456Z","payload":{"tool_call_id":"c1",'
    b'"tool_name":"svc.tools.search","result":{"status":"ok"},"duration":1500000000}}'
)
_WITH_SERVER_DATA = (
    _USUAL[:-1].replace(b"26.123456Z", b"26.123456789Z") + b',"server_data":{"rows":[1,2.50,1e3]}}'
)


def _send_path() -> Callable[[], object]:
    """What ``StreamSink.send`` does per event before the backend: validate and encode."""
    from streamsink_memory import MemoryBackend

    sink = StreamSink(MemoryBackend())  # _entry never touches the backend
    event = StreamEvent("tool_end", "run-123", "session-123", "evt-1", {"a": 1, "b": [1, 2]})
    return lambda: sink._entry(event)


def main() -> None:
    now = datetime.now(UTC)
    rows = [
        ("Entry, attrs frozen __init__", _best(lambda: _AttrsEntry("s", "n", b"p"))),
        ("Entry, NamedTuple (ours)", _best(lambda: Entry("s", "n", b"p"))),
        ("StreamEvent(...)", _best(lambda: StreamEvent("t", "r", "s", "k", 1, timestamp=now))),
        (
            "decoded_event(...) (ours)",
            _best(lambda: decoded_event("t", "r", "s", "k", 1, None, now, "1-0", "x", None)),
        ),
        ("format_timestamp(datetime.now(UTC))", _best(lambda: format_timestamp(datetime.now(UTC)))),
        ("now_timestamp() (ours)", _best(now_timestamp)),
        ("decode_envelope(usual envelope)", _best(lambda: decode_envelope(_USUAL))),
        (
            "decode_entry(server_data, ns timestamp)",
            _best(lambda: decode_entry(_WITH_SERVER_DATA, "1-0", "s")),
        ),
        ("StreamSink send path (validate + encode)", _best(_send_path())),
        ("anyio checkpoint()", anyio.run(_awaited, checkpoint)),
        ("asyncio.sleep(0) (memory:// on asyncio)", anyio.run(_awaited, lambda: asyncio.sleep(0))),
    ]
    for label, ns in rows:
        print(f"{label:<42} {ns:>8,.0f} ns")


if __name__ == "__main__":
    main()
