"""The decoders raise DecodeError and nothing else, whatever bytes they are given.

``decode_envelope`` (and ``decode_entry`` behind it) and ``decode_dead_letter`` read bytes that
any producer may have written into a stream. Hypothesis feeds them arbitrary bytes and, more
usefully, JSON that is almost right: every envelope field with odd types, timestamps at and past
the edges of RFC 3339 and of ``datetime``, deep and huge values, escapes of lone surrogates,
duplicate keys, byte-order marks. JSON is built here as text, so it can hold what no encoder
writes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from streamsink import DeadLetter, DecodeError, StreamEvent, decode_dead_letter, decode_envelope
from streamsink._envelope import decode_entry

# Fast enough for every run (a few seconds for the module), database off: nothing is written.
FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ENVELOPE_KEYS = ["type", "event_key", "run_id", "session_id", "timestamp", "payload", "server_data"]
DEAD_LETTER_KEYS = [
    "origin_stream",
    "entry_id",
    "group",
    "consumer",
    "attempts",
    "reason",
    "event_name",
    "payload",
    "payload_base64",
    "dead_lettered_at",
]

# -- JSON text ------------------------------------------------------------------------------------


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


# String literals no encoder writes: escapes of lone surrogates (and of a reversed pair), raw
# control characters, bad escapes, an escaped NUL.
ODD_STRINGS = st.sampled_from(
    [
        '"\\ud800"',
        '"\\udfff"',
        '"a\\ud83dz"',
        '"\\ude00\\ud83d"',
        '"\\ud83d\\ude00"',
        '"\\u0000"',
        '"\x01"',
        '"\\x41"',
        '"\\u12"',
        '"\u2028\u2029"',
        '"\u202e\ufeff"',
        '"',
    ]
)
SOME_TEXT = st.text(st.characters(codec="utf-8"), max_size=8)  # no lone surrogates
VALID_NUMBERS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
NUMBERS = st.one_of(
    st.integers().map(str),
    st.integers(min_value=2**63 - 2, max_value=2**64 + 2).map(str),
    st.integers(min_value=-(2**64) - 2, max_value=-(2**63) + 2).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["1" * 400, "-0", "1e400", "-1e400", "1E-400", "0.1e1", "01", "1.", "NaN"]),
)
SCALARS = st.one_of(
    st.sampled_from(["null", "true", "false"]),
    NUMBERS,
    st.text(max_size=20).map(_quoted),
    st.text(max_size=20).map(lambda s: json.dumps(s, ensure_ascii=True)),
    ODD_STRINGS,
)


def _array(items: list[str]) -> str:
    return "[" + ",".join(items) + "]"


def _object(pairs: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{_quoted(k)}:{v}" for k, v in pairs) + "}"


def _nested_json(
    scalars: st.SearchStrategy[str], keys: st.SearchStrategy[str]
) -> st.SearchStrategy[str]:
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4).map(_array),
            st.lists(st.tuples(keys, inner), max_size=4).map(_object),
        ),
        max_leaves=12,
    )


# JSON orjson reads, for the fields' good values; and JSON with odd parts anywhere.
VALID_JSON = _nested_json(
    st.one_of(
        st.sampled_from(["null", "true", "false"]),
        VALID_NUMBERS,
        SOME_TEXT.map(_quoted),
        SOME_TEXT.map(lambda s: json.dumps(s, ensure_ascii=True)),
    ),
    SOME_TEXT,
)
JSON = _nested_json(SCALARS, st.text(max_size=6))
# Nesting around the limits: orjson reads at most 1024 levels and writes at most 254.
DEEP = st.builds(
    lambda depth, leaf, brace: (
        ("[" * depth + leaf + "]" * depth) if not brace else ('{"a":' * depth + leaf + "}" * depth)
    ),
    st.sampled_from([200, 253, 254, 255, 256, 1000, 1023, 1024, 1025, 5000]),
    st.sampled_from(["1", "", '"x"']),
    st.booleans(),
)
HUGE = st.sampled_from(
    [
        _quoted("x" * 1_000_000),
        _array(["1"] * 50_000),
        _object([(f"k{i}", "null") for i in range(10_000)]),
    ]
)
# Mostly ordinary JSON, so that the odd parts are rarely all the decoder sees.
ANY_VALUE = st.one_of(*[JSON] * 6, DEEP, HUGE, st.just("[" * 100_000))

# -- timestamps -----------------------------------------------------------------------------------


def _two(n: int) -> str:
    return f"{n:02d}"


ZONES = st.one_of(
    st.sampled_from(["Z", "z", "", "+00:00", "-00:00", "+24:00", "-23:59", "+23:59", "+0100"]),
    st.builds(
        lambda sign, h, m: f"{sign}{_two(h)}:{_two(m)}",
        st.sampled_from("+-"),
        st.integers(0, 25),
        st.integers(0, 61),
    ),
)
COMPOSED_TIMESTAMPS = st.builds(
    lambda y, mo, d, h, mi, s, frac, zone, sep: (
        f"{y:04d}-{_two(mo)}-{_two(d)}{sep}{_two(h)}:{_two(mi)}:{_two(s)}{frac}{zone}"
    ),
    st.one_of(st.integers(0, 9999), st.sampled_from([0, 1, 9999, 10000])),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 24),
    st.integers(0, 60),
    st.integers(0, 61),
    st.one_of(st.just(""), st.text("0123456789", min_size=0, max_size=12).map(lambda f: "." + f)),
    ZONES,
    st.sampled_from(["T", "T", "T", "t", " ", "_"]),
)
EDGE_TIMESTAMPS = st.sampled_from(
    [
        "9999-12-31T23:59:59-01:00",
        "9999-12-31T23:59:59.999999999-23:59",
        "9999-12-31T23:59:59.999999999Z",
        "0001-01-01T00:00:00+01:00",
        "0001-01-01T00:00:00+23:59",
        "0001-01-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "2016-12-31T23:59:60Z",
        "2016-12-31T23:59:60.5+01:00",
        "2026-11-26T17:19:26.123456789Z",
        "2026-11-26T17:19:26.123456789-07:00",
        "2026-02-29T00:00:00Z",
        "2024-02-29T24:00:00Z",
        "\uff12\uff10\uff12\uff16-11-26T17:19:26Z",  # fullwidth digits
        "\u0662\u0660\u0662\u0666-11-26T17:19:26Z",  # Arabic-Indic digits
        "2026-11-26T17:19:26.\ud800Z",
    ]
)
TIMESTAMPS = st.one_of(COMPOSED_TIMESTAMPS, EDGE_TIMESTAMPS, st.text(max_size=40))
TIMESTAMP_VALUES = st.one_of(TIMESTAMPS.map(_quoted), TIMESTAMPS.map(json.dumps), ANY_VALUE)

# -- documents ------------------------------------------------------------------------------------


@st.composite
def _documents(
    draw: st.DrawFn, fields: dict[str, tuple[st.SearchStrategy[str], st.SearchStrategy[str]]]
) -> str:
    """A JSON object with each of ``fields`` good, odd or missing, in any order, sometimes twice,
    and sometimes with unknown keys: near misses of a valid document."""
    pairs = []
    for key, (good, odd) in fields.items():
        how = draw(st.sampled_from(["good"] * 12 + ["odd", "missing"]))
        if how != "missing":
            pairs.append((key, draw(good if how == "good" else odd)))
    pairs = draw(st.permutations(pairs))
    if pairs and draw(st.booleans()):
        key, _ = draw(st.sampled_from(pairs))
        good, odd = fields[key]
        pairs.append((key, draw(st.one_of(good, odd))))  # a duplicate key: the last one counts
    pairs += draw(st.lists(st.tuples(st.text(max_size=8), JSON), max_size=2))
    return _object(pairs)


def _text(good: st.SearchStrategy[str]) -> tuple[st.SearchStrategy[str], st.SearchStrategy[str]]:
    return good.map(_quoted), ANY_VALUE


def _rfc3339(wall: datetime, nanos: int, offset_minutes: int) -> str:
    """Valid RFC 3339 as Go writes it: any wall time, up to 9 fraction digits, any offset.
    At the ends of the calendar an offset takes it out of ``datetime``'s range in UTC."""
    fraction = f".{nanos:09d}".rstrip("0").rstrip(".")
    if offset_minutes == 0:
        zone = "Z"
    else:
        sign = "+" if offset_minutes > 0 else "-"
        zone = f"{sign}{_two(abs(offset_minutes) // 60)}:{_two(abs(offset_minutes) % 60)}"
    return wall.strftime("%Y-%m-%dT%H:%M:%S").zfill(19) + fraction + zone


WALL_TIMES = st.one_of(  # any time, or one on the first or last day datetime has
    st.datetimes(),
    st.datetimes(max_value=datetime(1, 1, 1, 23, 59, 59)),
    st.datetimes(min_value=datetime(9999, 12, 31)),
)
GOOD_TIMESTAMPS = st.builds(
    _rfc3339,
    WALL_TIMES,
    st.one_of(st.just(0), st.integers(0, 999_999_999)),
    st.one_of(st.just(0), st.integers(-1439, 1439), st.sampled_from([-1439, -1, 1, 1439])),
)
ENVELOPE_FIELDS = {
    "type": _text(st.sampled_from(["tool_start", "x y", "x\ny", "\u202e"])),
    "event_key": _text(SOME_TEXT),
    "run_id": _text(SOME_TEXT),
    "session_id": _text(SOME_TEXT),
    "timestamp": (GOOD_TIMESTAMPS.map(_quoted), TIMESTAMP_VALUES),
    "payload": (VALID_JSON, ANY_VALUE),
    "server_data": (VALID_JSON, ANY_VALUE),
}
DEAD_LETTER_FIELDS = {
    "origin_stream": _text(SOME_TEXT),
    "entry_id": _text(st.sampled_from(["1-0", "", "x"])),
    "group": _text(SOME_TEXT),
    "consumer": _text(SOME_TEXT),
    "attempts": (
        st.integers(0, 100).map(str),
        st.one_of(NUMBERS, ANY_VALUE, st.sampled_from(['"3"', "true", "3.0", "-1"])),
    ),
    "reason": _text(SOME_TEXT),
    "event_name": _text(SOME_TEXT),
    "payload": _text(SOME_TEXT),
    "payload_base64": (
        st.binary(max_size=8).map(lambda b: _quoted(base64.b64encode(b).decode())),
        st.one_of(ANY_VALUE, st.sampled_from(['"eA"', '"!!"', '"é"', '"eA==\\n"', '"eA==eA=="'])),
    ),
    "dead_lettered_at": (GOOD_TIMESTAMPS.map(_quoted), TIMESTAMP_VALUES),
}


def _wrapped(documents: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """Documents as bytes, sometimes mangled: a BOM, a non-object around or instead of them,
    whitespace, trailing bytes, invalid UTF-8, a cut."""
    as_is: list[Callable[[str], bytes]] = [lambda t: t.encode("utf-8", "surrogatepass")] * 12
    mangle = st.sampled_from(
        [
            *as_is,
            lambda t: b"\xef\xbb\xbf" + t.encode("utf-8", "surrogatepass"),
            lambda t: ("[" + t + "]").encode("utf-8", "surrogatepass"),
            lambda t: (" \n\t" + t + " ").encode("utf-8", "surrogatepass"),
            lambda t: t.encode("utf-8", "surrogatepass") + b"x",
            lambda t: t.encode("utf-8", "surrogatepass") + b"\xff",
            lambda t: t.encode("utf-16"),
            lambda t: t.encode("utf-8", "surrogatepass")[: len(t) // 2],
        ]
    )
    return st.builds(lambda doc, how: how(doc), st.one_of(documents, documents, ANY_VALUE), mangle)


ENVELOPES = _wrapped(_documents(ENVELOPE_FIELDS))
DEAD_LETTERS = _wrapped(_documents(DEAD_LETTER_FIELDS))

# -- properties -----------------------------------------------------------------------------------


def _check_event(data: bytes) -> None:
    """``decode_envelope`` gives a well-typed StreamEvent or raises DecodeError; nothing else."""
    try:
        event = decode_envelope(data)
    except DecodeError:
        return
    assert type(event) is StreamEvent
    for text in (event.type, event.run_id, event.session_id, event.event_key):
        assert type(text) is str
    assert event.timestamp is None or (
        isinstance(event.timestamp, datetime) and event.timestamp.tzinfo is UTC
    )
    assert event.server_data is None or type(event.server_data) is bytes
    stamped = decode_entry(data, "1-0", "s")
    assert (stamped.entry_id, stamped.stream_id, stamped.type) == ("1-0", "s", event.type)


def _check_dead_letter(data: bytes) -> None:
    """``decode_dead_letter`` gives a well-typed DeadLetter or raises DecodeError."""
    try:
        letter = decode_dead_letter(data)
    except DecodeError:
        return
    assert type(letter) is DeadLetter
    for text in (letter.origin_stream, letter.entry_id, letter.reason):
        assert type(text) is str
    for optional in (letter.group, letter.consumer, letter.event_name):
        assert optional is None or type(optional) is str
    assert type(letter.attempts) is int
    assert letter.payload is None or type(letter.payload) is bytes
    assert letter.dead_lettered_at.tzinfo is UTC


@FUZZ
@given(st.binary(max_size=300))
@example(b"")
@example(b"\xef\xbb\xbf{}")
@example(b'{"type":"t","run_id":"r","timestamp":"9999-12-31T23:59:59-01:00"}')
def test_envelope_decoder_on_arbitrary_bytes(data: bytes) -> None:
    _check_event(data)


@FUZZ
@given(ENVELOPES)
@example(b'{"type":"t","run_id":"r","timestamp":"9999-12-31T23:59:59-01:00"}')
@example(b'{"type":"t","run_id":"r","timestamp":"0001-01-01T00:00:00+01:00"}')
@example(
    b'{"type":"t","event_key":"k","run_id":"r","session_id":"s",'
    b'"timestamp":"0001-01-01T00:00:00.123456789+23:59","payload":null}'
)
@example(b'{"type":"t","run_id":"r","server_data":' + b"[" * 300 + b"]" * 300 + b"}")
@example(b'{"type":"t","run_id":"r","timestamp":"2016-12-31T23:59:60Z"}')
@example(b'{"type":"t","type":5,"run_id":"r"}')
@example(b'{"type":"t","run_id":"\\ud800"}')
def test_envelope_decoder_on_odd_envelopes(data: bytes) -> None:
    _check_event(data)


@FUZZ
@given(st.binary(max_size=300))
def test_dead_letter_decoder_on_arbitrary_bytes(data: bytes) -> None:
    _check_dead_letter(data)


_LETTER = (
    '{"origin_stream":"s","entry_id":"1-0","attempts":%s,"reason":"r",'
    '"payload":%s,"dead_lettered_at":%s}'
)


@FUZZ
@given(DEAD_LETTERS)
@example((_LETTER % ("1", "null", '"9999-12-31T23:59:59-01:00"')).encode())
@example((_LETTER % ("1", "null", '"0001-01-01T00:00:00+01:00"')).encode())
@example((_LETTER % ("1", '{"a":1}', '"2026-01-01T00:00:00Z"')).encode())
@example((_LETTER % ('"9"', "null", '"2026-01-01T00:00:00Z"')).encode())
@example((_LETTER % ("true", "null", '"2026-01-01T00:00:00Z"')).encode())
@example((_LETTER % ("1.5", "null", '"2026-01-01T00:00:00Z"')).encode())
@example((_LETTER % ("1", "null", "5")).encode())
@example(
    b'{"origin_stream":"s","entry_id":"1-0","attempts":1,"reason":"r","group":[1],'
    b'"dead_lettered_at":"2026-01-01T00:00:00Z"}'
)
def test_dead_letter_decoder_on_odd_records(data: bytes) -> None:
    _check_dead_letter(data)


def test_the_strategies_reach_both_outcomes() -> None:
    """The structured strategies are not all garbage: some of what they make decodes."""
    decoded = {"envelope": 0, "dead letter": 0}

    @settings(FUZZ, max_examples=100)
    @given(st.data())
    def probe(data: st.DataObject) -> None:
        try:
            decode_envelope(data.draw(_documents(ENVELOPE_FIELDS)).encode("utf-8", "surrogatepass"))
            decoded["envelope"] += 1
        except DecodeError:
            pass
        try:
            decode_dead_letter(
                data.draw(_documents(DEAD_LETTER_FIELDS)).encode("utf-8", "surrogatepass")
            )
            decoded["dead letter"] += 1
        except DecodeError:
            pass

    probe()
    assert decoded["envelope"] > 0, decoded
    assert decoded["dead letter"] > 0, decoded
