"""Envelopes relay byte for byte: what a decoder keeps of the bytes it was given, and what an
encoder writes back from them (docs/interop.md, "What byte-exact covers")."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

from streamsink import (
    ConfigurationError,
    DecodeError,
    Envelope,
    SinkOptions,
    StreamEvent,
    StreamSink,
    decode_envelope,
    encode_envelope,
)
from streamsink._envelope import relay_envelope
from streamsink.backend import StartPosition
from streamsink_memory import MemoryBackend, MemoryBroker

HEAD = b'{"type":"tool_end","event_key":"k","run_id":"r","session_id":"s","timestamp":"2026-11-26T17:19:26Z"'


# -- server_data: the bytes of the value, as loom's rawjson.Message keeps them -------------------


@pytest.mark.parametrize(
    "server_data",
    [
        b'{"rows":[1,2.50,1e3]}',
        b'{"html":"\\u003cb\\u003e","e":"\\u00e9","slash":"\\/"}',
        b"[1.0,-0,1E+2,0.1e-1]",
        b'"text"',
        b"12345678901234567890123",
        b'{"server_data":{"server_data":1}}',
    ],
)
def test_server_data_keeps_the_bytes_it_was_received_with(server_data: bytes) -> None:
    """The number forms, escapes and nesting of ``server_data`` come back exactly as they were
    in the envelope, not as a re-serialisation of their parsed value."""
    event = decode_envelope(HEAD + b',"payload":{"a":1},"server_data":' + server_data + b"}")
    assert event.server_data == server_data


@pytest.mark.parametrize(
    ("data", "server_data"),
    [
        # not the last key, and a payload with a key of the same name before it
        (
            b'{"type":"t","payload":{"server_data":[9]},"server_data":{"a": 1.50},"run_id":"r"}',
            b'{"a": 1.50}',
        ),
        # whitespace around the key, the colon and the value
        (b'{ "type" : "t" , "server_data" :  [1 , 2.0]  \n}', b"[1 , 2.0]"),
        # an escaped key, which is the same key once unescaped
        (b'{"type":"t","server\\u005fdata":[2.0]}', b"[2.0]"),
        # twice: the last one counts, as in Go and in orjson
        (b'{"type":"t","server_data":[1.0],"server_data":[2.0]}', b"[2.0]"),
        # the last key, with a key of the same name nested in it
        (b'{"type":"t","server_data":{"x":1,"server_data":2.0}}', b'{"x":1,"server_data":2.0}'),
        # an earlier key whose name ends in server_data, escaped quote included
        (b'{"type":"t","x\\"server_data":[1.0],"server_data":[3.0]}', b"[3.0]"),
        (b'{"type":"t","server_data":[3.0],"x\\"server_data":[1.0]}', b"[3.0]"),
    ],
)
def test_server_data_is_found_wherever_it_is(data: bytes, server_data: bytes) -> None:
    """The span of ``server_data`` is found by reading the envelope's structure: keys in any
    order, whitespace, escaped keys, duplicates and look-alike keys do not mislead it."""
    assert decode_envelope(data).server_data == server_data


def test_null_server_data_is_none() -> None:
    """``"server_data":null`` is no server data, as Go's rawjson.Message reads it."""
    assert decode_envelope(HEAD + b',"server_data":null}').server_data is None


# -- the Go vectors: decode, check the fields, relay, compare the bytes ---------------------------

GO = json.loads((Path(__file__).parent.parent / "data" / "go-envelopes.json").read_text("utf-8"))


def _bytes(case: dict[str, Any], key: str) -> bytes:
    if key in case:
        return str(case[key]).encode("utf-8")
    return bytes.fromhex(case[key + "_hex"])


def _plain(value: Any) -> Any:
    """A decoded payload in the vectors' notation: Decimals as {"decimal": text}, a list nested
    deeper than the recursion limit as {"depth": n}."""
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, list) and value and isinstance(value[0], list):
        depth = 0
        while isinstance(value, list):
            depth, value = depth + 1, value[0] if value else None
        return {"depth": depth}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


@pytest.mark.parametrize("case", GO["decode"], ids=lambda c: c["name"])
def test_go_vectors_decode_and_relay_byte_exact(case: dict[str, Any]) -> None:
    """Every vector decodes to its fields and relays to the bytes Go's json.Marshal writes; for
    what Go wrote, that is the input itself."""
    data = _bytes(case, "input")
    event = decode_envelope(data)
    expected = case["expected"]
    assert event.type == expected["type"]
    assert event.event_key == expected["event_key"]
    assert event.run_id == expected["run_id"]
    assert event.session_id == expected["session_id"]
    stamp = expected["timestamp"]
    assert event.timestamp == (None if stamp is None else datetime.fromisoformat(stamp))
    assert event.timestamp_ns == expected["timestamp_ns"]
    assert event.timestamp_offset == expected["timestamp_offset"]
    assert _plain(event.payload) == expected["payload"]
    assert event.payload_exact is expected["payload_exact"]
    server_data = expected["server_data"]
    assert event.server_data == (None if server_data is None else server_data.encode())
    assert event.source is data
    reencoded = _bytes(case, "reencoded")
    assert relay_envelope(event) == reencoded
    if case["go_wrote_it"]:
        assert reencoded == data
    if event.timestamp is not None:
        envelope = Envelope(
            type=event.type,
            event_key=event.event_key,
            run_id=event.run_id,
            session_id=event.session_id,
            timestamp=event.timestamp,
            payload=event.payload,
            server_data=event.server_data,
            source=event.source,
        )
        assert encode_envelope(envelope) == reencoded


@pytest.mark.parametrize("case", GO["reject"], ids=lambda c: c["name"])
def test_go_reject_vectors(case: dict[str, Any]) -> None:
    """What Go's decoder refuses (and an envelope without a type) is a DecodeError."""
    with pytest.raises(DecodeError):
        decode_envelope(_bytes(case, "input"))


def test_the_go_vectors_cover_every_case() -> None:
    """One vector per case the issue lists, each citing its Go rule."""
    names = {case["name"] for case in GO["decode"]}
    for needed in (
        "raw server_data",
        "nanosecond UTC timestamp",
        "offset timestamp",
        "number beyond float range",
        "integers beyond 64 bits",
        "lone surrogate escapes",
        "bytes that are not UTF-8 in a payload string",
        "HTML characters escaped",
        "U+2028 and U+2029 escaped",
        "duplicate keys",
        "nesting 10000 levels deep",
        "unknown keys",
        "missing optional keys",
    ):
        assert needed in names
    assert all(case["go_rule"] for case in GO["decode"] + GO["reject"])


@pytest.mark.anyio
async def test_a_relaying_sink_writes_go_s_bytes() -> None:
    """``SinkOptions(timestamps="event")`` writes a received event with its own timestamp: an
    envelope Go wrote comes out of the sink as the same bytes."""
    backend = MemoryBackend(MemoryBroker())
    sink = StreamSink(backend, SinkOptions(timestamps="event", stream_id=lambda e: "relay"))
    written = []
    for case in GO["decode"]:
        if case["go_wrote_it"] and case["expected"]["type"] and case["expected"]["timestamp"]:
            data = _bytes(case, "input")
            await sink.send(decode_envelope(data))
            written.append(data)
    records = await _records(backend, "relay", len(written))
    assert [record.payload for record in records] == written


async def _records(backend: MemoryBackend, stream_id: str, count: int) -> list[Any]:
    reader = await backend.open_reader(stream_id, StartPosition.oldest())
    try:
        return list(await reader.read(count, 0.1))
    finally:
        await reader.aclose()


@pytest.mark.anyio
async def test_a_stamping_sink_keeps_the_payload_bytes() -> None:
    """The default sink stamps now, and still writes a received payload as its bytes: 1e400
    and integers beyond 64 bits go on as written (orjson could not write them)."""
    backend = MemoryBackend(MemoryBroker())
    event = decode_envelope(HEAD + b',"payload":{"n":1e400,"big":123456789012345678901}}')
    await StreamSink(backend, SinkOptions(stream_id=lambda e: "s")).send(event)
    (record,) = await _records(backend, "s", 1)
    assert record.payload.endswith(b'"payload":{"n":1e400,"big":123456789012345678901}}')
    assert b"2026-11-26T17:19:26Z" not in record.payload


def test_a_changed_payload_is_encoded_anew() -> None:
    """A payload replaced (attrs.evolve) or changed in place is written by orjson; what was not
    changed is still written as received."""
    data = HEAD + b',"payload":{"a":1.50,"s":"<b>"}}'
    event = decode_envelope(data)
    assert relay_envelope(event) == HEAD + b',"payload":{"a":1.50,"s":"\\u003cb\\u003e"}}'
    replaced = attrs.evolve(event, payload={"a": 2})
    assert replaced.source is data
    assert relay_envelope(replaced) == HEAD + b',"payload":{"a":2}}'
    event.payload["a"] = 1.5  # the same value as a float: still the same JSON
    assert relay_envelope(event) == HEAD + b',"payload":{"a":1.50,"s":"\\u003cb\\u003e"}}'
    event.payload["a"] = True
    assert relay_envelope(event) == HEAD + b',"payload":{"a":true,"s":"<b>"}}'
    renamed = attrs.evolve(decode_envelope(data), run_id="<x>")
    assert relay_envelope(renamed).startswith(
        b'{"type":"tool_end","event_key":"k","run_id":"\\u003cx'
    )


def test_a_changed_timestamp_is_written_as_given() -> None:
    """The received nanoseconds are written only while ``timestamp`` is the decoded one."""
    data = b'{"type":"t","run_id":"r","timestamp":"2026-11-26T19:19:26.123456789+02:00"}'
    event = decode_envelope(data)
    assert relay_envelope(event) == data
    later = attrs.evolve(event, timestamp=datetime(2027, 1, 1, tzinfo=UTC))
    assert relay_envelope(later) == b'{"type":"t","run_id":"r","timestamp":"2027-01-01T00:00:00Z"}'
    assert (later.timestamp_ns, later.timestamp_offset) == (1798761600_000_000_000, 0)


def test_relaying_needs_a_timestamp() -> None:
    """An event that never was on a stream has no timestamp of its own to relay."""
    with pytest.raises(ConfigurationError, match="no timestamp of its own to relay"):
        relay_envelope(StreamEvent("t", "r", "s"))


@pytest.mark.parametrize("value", ["later", "", None, True, "NOW"])
def test_sink_timestamps_option_is_validated(value: object) -> None:
    """``SinkOptions.timestamps`` is 'now' or 'event'; anything else names the option."""
    with pytest.raises(ConfigurationError, match=r"SinkOptions\.timestamps=.* is invalid"):
        SinkOptions(timestamps=value)  # type: ignore[arg-type]


def test_source_must_be_bytes() -> None:
    """``StreamEvent.source`` and ``Envelope.source`` take bytes or None, with a clear error."""
    with pytest.raises(ConfigurationError, match=r"StreamEvent\.source must be"):
        StreamEvent("t", "r", source="text")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"Envelope\.source=str is invalid"):
        Envelope(type="t", timestamp=datetime.now(UTC), source="text")  # type: ignore[arg-type]


def test_decoded_events_compare_without_their_source() -> None:
    """``source`` is not compared: a decoded event equals one made with the same fields."""
    event = decode_envelope(HEAD + b"}")
    stamp = datetime(2026, 11, 26, 17, 19, 26, tzinfo=UTC)
    assert event == StreamEvent("tool_end", "r", "s", "k", timestamp=stamp)
