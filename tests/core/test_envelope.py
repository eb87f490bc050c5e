"""The envelope codec against the golden vectors shared with the Go services."""

from __future__ import annotations

import json
import weakref
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import attrs
import orjson
import pytest

import streamsink._timestamps as timestamps_module
from streamsink import (
    ConfigurationError,
    DecodeError,
    Envelope,
    StreamEvent,
    decode_envelope,
    encode_envelope,
)
from streamsink._envelope import decode_entry, format_timestamp, now_timestamp, parse_timestamp

VECTORS = json.loads((Path(__file__).parent.parent / "data" / "envelopes.json").read_text())


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize("case", VECTORS["encode"], ids=lambda c: c["name"])
def test_encode_vectors(case: dict) -> None:
    """Encoding gives the expected JSON, key order and timestamp text."""
    fields = dict(case["fields"])
    fields["timestamp"] = _ts(fields["timestamp"])
    data = encode_envelope(Envelope(**fields))
    parsed = orjson.loads(data)
    assert parsed == case["expected_json"]
    assert list(parsed) == case["expected_key_order"]
    assert parsed["timestamp"] == case["expected_timestamp"]
    assert data == orjson.dumps(parsed), "not compact"


@pytest.mark.parametrize("case", VECTORS["decode"], ids=lambda c: c["name"])
def test_decode_vectors(case: dict) -> None:
    """Decoding Go's output gives the expected fields, timestamps in UTC with microseconds."""
    event = decode_envelope(case["input"].encode())
    expected = case["expected"]
    assert event.type == expected["type"]
    assert event.event_key == expected["event_key"]
    assert event.run_id == expected["run_id"]
    assert event.session_id == expected["session_id"]
    assert event.payload == expected["payload"]
    assert event.server_data_value() == expected["server_data"]
    assert event.timestamp == _ts(expected["timestamp"])
    assert event.timestamp is not None
    assert event.timestamp.tzinfo is UTC


@pytest.mark.parametrize("case", VECTORS["reject"], ids=lambda c: c["name"])
def test_reject_vectors(case: dict) -> None:
    """Malformed input raises DecodeError and nothing else."""
    with pytest.raises(DecodeError):
        decode_envelope(bytes.fromhex(case["input_hex"]))


@pytest.mark.parametrize(
    "data",
    [
        b'{"type":"x","run_id":5,"timestamp":"2026-11-26T17:19:26Z"}',
        b'{"type":"x","run_id":"r","timestamp":12}',
        b'{"type":"x","run_id":"r","timestamp":"2026-11-26"}',
        b'{"type":"x","run_id":"r","timestamp":"2026-11-26 17:19:26Z"}',
        # no type: Go's decoder would take it (an empty type), but a dead-letter record or any
        # other JSON object would then pass for an event, and Go's sinks always write one
        b'{"run_id":"r"}',
        b"{}",
        # six keys, as a sink writes them, with one of the wrong type
        b'{"type":"x","event_key":"k","run_id":7,"session_id":"s",'
        b'"timestamp":"2026-11-26T17:19:26.5Z","payload":1}',
        b'{"type":"x","event_key":"k","run_id":"r","session_id":"s",'
        b'"timestamp":"2026-11-26T17:19:26.5","payload":1}',
        b"null",
        b'"text"',
    ],
)
def test_decode_rejects_wrong_field_types(data: bytes) -> None:
    """Wrong field types and non-RFC 3339 timestamps are decode errors, never crashes."""
    with pytest.raises(DecodeError):
        decode_envelope(data)


def test_round_trip_keeps_everything() -> None:
    """An encoded envelope decodes back to the same fields, server_data included."""
    stamp = datetime(2026, 11, 26, 17, 19, 26, 123456, tzinfo=UTC)
    envelope = Envelope(
        type="tool_end",
        event_key="k",
        run_id="r",
        session_id="s",
        timestamp=stamp,
        payload={"duration": 1_500_000_000, "text": "naïve — 日本"},
        server_data=b'{"rows":[1]}',
    )
    event = decode_envelope(encode_envelope(envelope))
    assert (event.type, event.event_key, event.run_id, event.session_id) == (
        "tool_end",
        "k",
        "r",
        "s",
    )
    assert event.payload == envelope.payload
    assert event.server_data == b'{"rows":[1]}'
    assert event.timestamp == stamp


def test_unencodable_payload_names_the_path() -> None:
    """A payload orjson cannot encode raises ConfigurationError naming the field path and type."""
    envelope = Envelope(
        type="t", run_id="r", timestamp=datetime.now(UTC), payload={"a": [1, {"b": object()}]}
    )
    with pytest.raises(ConfigurationError, match=r"payload\.a\[1\]\.b \(a object\)"):
        encode_envelope(envelope)
    bad_key = Envelope(type="t", run_id="r", timestamp=datetime.now(UTC), payload={1: "x"})
    with pytest.raises(ConfigurationError, match=r"payload\[1\] \(key\)"):
        encode_envelope(bad_key)


def test_invalid_server_data_is_refused() -> None:
    """server_data text that is not JSON is a ConfigurationError; blank server_data is None."""
    with pytest.raises(ConfigurationError, match="server_data is not valid JSON"):
        Envelope(type="t", run_id="r", timestamp=datetime.now(UTC), server_data="{nope")
    assert (
        Envelope(type="t", run_id="r", timestamp=datetime.now(UTC), server_data="  ").server_data
        is None
    )
    assert (
        Envelope(type="t", timestamp=datetime.now(UTC), server_data={"a": 1}).server_data
        == b'{"a":1}'
    )


def test_timestamps_format_like_go() -> None:
    """Timestamps are UTC with Z and no trailing zeros; offsets convert; naive is refused."""
    assert format_timestamp(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05Z"
    assert (
        format_timestamp(datetime(2026, 1, 2, 3, 4, 5, 100000, tzinfo=UTC))
        == "2026-01-02T03:04:05.1Z"
    )
    plus_two = timezone(timedelta(hours=2))
    assert (
        format_timestamp(datetime(2026, 1, 2, 5, 4, 5, tzinfo=plus_two)) == "2026-01-02T03:04:05Z"
    )
    with pytest.raises(ConfigurationError, match="timezone-aware"):
        format_timestamp(datetime(2026, 1, 2))


def test_parse_timestamp_truncates_nanoseconds() -> None:
    """Nanosecond fractions keep their microseconds; offsets convert to UTC."""
    assert parse_timestamp("2026-11-26T17:19:26.123456789Z") == datetime(
        2026, 11, 26, 17, 19, 26, 123456, tzinfo=UTC
    )
    assert parse_timestamp("2026-11-26T19:19:26.5+02:00") == datetime(
        2026, 11, 26, 17, 19, 26, 500000, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "data",
    [
        b'{"type":"t","event_key":"k","run_id":"r","session_id":"s",'
        b'"timestamp":"2026-11-26T17:19:26.123456Z","payload":{"a":1}}',
        b'{"type":"t","run_id":"r","timestamp":"2026-11-26T17:19:26Z","server_data":{"b":2}}',
        b'{"Type":"t","run_id":"r","timestamp":"2026-11-26T17:19:26.5+02:00"}',
    ],
)
def test_decoded_events_are_plain_frozen_stream_events(data: bytes) -> None:
    """Whichever decoding path built it, an event is exactly a StreamEvent: frozen, weakly
    referenceable, and equal to its copy made by the public constructor."""
    event = decode_entry(data, "1-0", "session/s")
    assert type(event) is StreamEvent
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.type = "changed"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        del event.payload  # type: ignore[misc]
    assert weakref.ref(event)() is event
    assert event == StreamEvent(
        event.type,
        event.run_id,
        event.session_id,
        event.event_key,
        event.payload,
        event.server_data,
        timestamp=event.timestamp,
        entry_id="1-0",
        stream_id="session/s",
    )
    assert event.source == data


def test_decoded_events_equal_constructed_ones() -> None:
    """The decoder's fast constructor builds the same StreamEvent as the public one."""
    stamp = datetime(2026, 11, 26, 17, 19, 26, 5, tzinfo=UTC)
    data = encode_envelope(
        Envelope(
            type="tool_end",
            event_key="k",
            run_id="r",
            session_id="s",
            timestamp=stamp,
            payload=[1],
            server_data=b'{"a":1}',
        )
    )
    expected = StreamEvent(
        "tool_end", "r", "s", "k", [1], b'{"a":1}', timestamp=stamp, entry_id="1-0", stream_id="x"
    )
    decoded = decode_entry(data, "1-0", "x")
    assert decoded == expected


def test_six_key_envelopes_without_a_payload_key_decode() -> None:
    """An envelope with six keys, one of them unknown instead of ``payload``, decodes with no
    payload (the decoder's shortcut for the usual six keys must not trip on it)."""
    data = (
        b'{"type":"x","event_key":"k","run_id":"r","session_id":"s",'
        b'"timestamp":"2026-11-26T17:19:26.5Z","extra":1}'
    )
    event = decode_envelope(data)
    assert (event.type, event.event_key, event.payload) == ("x", "k", None)
    assert event.timestamp == datetime(2026, 11, 26, 17, 19, 26, 500000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (1_700_000_000_123_456_789, "2023-11-14T22:13:20.123456Z"),
        (1_700_000_000_120_000_000, "2023-11-14T22:13:20.12Z"),
        (1_700_000_000_000_000_999, "2023-11-14T22:13:20Z"),
        (1_700_000_001_000_001_000, "2023-11-14T22:13:21.000001Z"),
        (1_700_000_001_000_999_999, "2023-11-14T22:13:21.000999Z"),
        (1_700_000_001_001_000_000, "2023-11-14T22:13:21.001Z"),
        (1_700_000_001_100_000_000, "2023-11-14T22:13:21.1Z"),
        (1_700_000_001_100_010_000, "2023-11-14T22:13:21.10001Z"),
        (1_700_000_000_999_999_999, "2023-11-14T22:13:20.999999Z"),
    ],
)
def test_now_timestamp_trims_like_format_timestamp(
    monkeypatch: pytest.MonkeyPatch, ns: int, text: str
) -> None:
    """Trailing zeros of the fraction are trimmed, a whole second has none, and the cached
    date and time of the second follow the clock."""
    monkeypatch.setattr(timestamps_module, "_time_ns", lambda: ns)
    assert now_timestamp() == text


def test_now_timestamp_follows_the_clock_across_milliseconds_and_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Readings within one millisecond, across milliseconds and seconds, and going back, each
    get their own time: nothing cached for one reading is used for another."""
    readings = [
        1_700_000_000_998_000_001,
        1_700_000_000_998_999_999,
        1_700_000_000_999_000_000,
        1_700_000_001_000_000_000,
        1_700_000_001_000_500_000,
        1_700_000_000_998_500_000,
        1_700_000_061_000_001_000,
    ]
    texts = []
    for ns in readings:
        monkeypatch.setattr(timestamps_module, "_time_ns", lambda ns=ns: ns)
        texts.append(now_timestamp())
    assert texts == [
        "2023-11-14T22:13:20.998Z",
        "2023-11-14T22:13:20.998999Z",
        "2023-11-14T22:13:20.999Z",
        "2023-11-14T22:13:21Z",
        "2023-11-14T22:13:21.0005Z",
        "2023-11-14T22:13:20.9985Z",
        "2023-11-14T22:14:21.000001Z",
    ]


def test_now_timestamp_formats_the_current_time() -> None:
    """``now_timestamp`` writes what ``format_timestamp`` writes for the current time."""
    before = datetime.now(UTC)
    text = now_timestamp()
    after = datetime.now(UTC)
    assert before <= parse_timestamp(text) <= after
    assert format_timestamp(parse_timestamp(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-26T17:19:26.Z",
        "2026-11-26T17:19:26.12a456Z",
        "2026-11-26T17:19:61Z",
        "2026-13-26T17:19:26Z",
        "2026-11-26T17-19-26Z",
        "20261126T171926.123456789Z",
    ],
)
def test_malformed_timestamps_are_refused(text: str) -> None:
    """Timestamps shaped almost like ours but not RFC 3339 are decode errors."""
    with pytest.raises(DecodeError):
        parse_timestamp(text)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("9999-12-31T23:59:59-01:00", 253402304399_000_000_000),
        ("9999-12-31T23:30:00.123456789-00:31", 253402300860_123_456_789),
        ("0001-01-01T00:00:00+01:00", -62135600400_000_000_000),
        ("0001-01-01T00:59:59.5+01:00", -62135596800_500_000_000),
        ("0000-01-01T00:00:00Z", -62167219200_000_000_000),
    ],
)
def test_timestamps_out_of_range_in_utc_decode_with_their_nanoseconds(text: str, ns: int) -> None:
    """Valid RFC 3339 whose UTC time falls outside the years ``datetime`` holds is what Go reads
    (years 0 to 9999, any offset): it decodes, with ``timestamp`` None and ``timestamp_ns`` set,
    on the decoder's shortcut for six keys and on its general path. ``parse_timestamp`` (dead
    letters, which we write ourselves) still refuses it."""
    with pytest.raises(DecodeError, match=r"out of range|not RFC 3339"):
        parse_timestamp(text)
    usual = (
        b'{"type":"x","event_key":"k","run_id":"r","session_id":"s","timestamp":"'
        + text.encode()
        + b'","payload":1}'
    )
    general = b'{"type":"x","run_id":"r","timestamp":"' + text.encode() + b'"}'
    for data in (usual, general):
        event = decode_entry(data, "1-0", "s")
        assert event.timestamp is None
        assert event.timestamp_ns == ns


def test_timestamps_at_the_edges_of_the_range_decode() -> None:
    """The first and last instants datetime can hold in UTC decode, whatever their offset."""
    assert parse_timestamp("9999-12-31T23:59:59.999999999Z") == datetime(
        9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC
    )
    assert parse_timestamp("9999-12-31T22:59:59+01:00") == datetime(
        9999, 12, 31, 21, 59, 59, tzinfo=UTC
    )
    assert parse_timestamp("0001-01-01T00:00:00-01:00") == datetime(1, 1, 1, 1, tzinfo=UTC)
    assert parse_timestamp("0001-01-01T01:00:00+01:00") == datetime(1, 1, 1, tzinfo=UTC)


def test_timestamp_errors_are_cut_short() -> None:
    """A huge timestamp string is not echoed whole in the error."""
    with pytest.raises(DecodeError) as caught:
        parse_timestamp("2026-11-26T17:19:26." + "1" * 100_000 + "Z")
    assert len(str(caught.value)) < 300
