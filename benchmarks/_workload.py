"""The events every scenario sends: one realistic ``tool_end`` shape, the same for all systems."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson

from streamsink import Envelope, StreamEvent, encode_envelope

__all__ = [
    "EVENT_TYPE",
    "GROUP",
    "MAXLEN",
    "RUN_ID",
    "event_dict",
    "events",
    "latency_event",
    "raw_encode",
    "envelope_bytes",
]

EVENT_TYPE = "tool_end"
RUN_ID = "run-0001"
GROUP = "bench"
MAXLEN = 1000  # XADD MAXLEN ~ 1000: streamsink's default, used by every system here
_DISTINCT = 100


def _payload(i: int) -> dict[str, Any]:
    return {
        "tool_call_id": f"call_{i:06d}",
        "tool": "web.search",
        "duration_ms": 42,
        "result": {"status": "ok", "hits": 3, "summary": "The quick brown fox " * 6},
    }


def events(session_id: str) -> list[StreamEvent]:
    """100 distinct events (cycled by the scenarios), ~250 bytes of payload each."""
    return [
        StreamEvent(EVENT_TYPE, RUN_ID, session_id, f"call_{i:06d}", _payload(i))
        for i in range(_DISTINCT)
    ]


def latency_event(session_id: str) -> StreamEvent:
    """An event carrying its send time (``perf_counter_ns``) in ``payload["t0"]``."""
    payload = _payload(0)
    payload["t0"] = time.perf_counter_ns()
    return StreamEvent(EVENT_TYPE, RUN_ID, session_id, "call_000000", payload)


def event_dict(event: StreamEvent) -> dict[str, Any]:
    """What a raw-client user would serialise for the same event."""
    return {
        "type": event.type,
        "run_id": event.run_id,
        "session_id": event.session_id,
        "payload": event.payload,
    }


def raw_encode(event: StreamEvent) -> bytes:
    """The raw baselines' encoding: ``orjson.dumps`` of :func:`event_dict`."""
    return orjson.dumps(event_dict(event))


def envelope_bytes(event: StreamEvent) -> bytes:
    """The envelope streamsink writes for ``event`` (for prefilling streams)."""
    return encode_envelope(
        Envelope(
            type=event.type,
            event_key=event.event_key,
            run_id=event.run_id,
            session_id=event.session_id,
            timestamp=datetime.now(UTC),
            payload=event.payload,
        )
    )
