"""StreamSink behaviour that the conformance suite does not pin down."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

import anyio
import orjson
import pytest

import streamsink._sink as sink_module
from streamsink import (
    ConfigurationError,
    Envelope,
    EventType,
    PublishedEvent,
    SinkClosedError,
    SinkOptions,
    StreamEvent,
    StreamSink,
)
from streamsink.backend import Entry
from streamsink.testing import RecordingSink

pytestmark = pytest.mark.anyio


class CountingBackend:
    """Records every append call; ids are per-call sequence numbers."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[list[Entry]] = []
        self.delay = delay

    async def append(self, entries: Sequence[Entry]) -> list[str]:
        self.calls.append(list(entries))
        await anyio.sleep(self.delay)
        base = sum(map(len, self.calls[:-1]))
        return [f"{base + i + 1}-0" for i in range(len(entries))]


async def test_concurrent_sends_share_round_trips() -> None:
    """Sends made while a round trip is in flight go out together, each with its own id."""
    backend = CountingBackend(delay=0.01)
    sink = StreamSink(backend)  # type: ignore[arg-type]
    results: dict[int, PublishedEvent] = {}

    async def send(i: int) -> None:
        results[i] = await sink.send(StreamEvent("tool_start", "r", "s", payload={"i": i}))

    async with anyio.create_task_group() as tg:
        for i in range(64):
            tg.start_soon(send, i)
    assert len(backend.calls) < 10, [len(c) for c in backend.calls]
    assert len({p.entry_id for p in results.values()}) == 64
    # Each send got the id of its own entry: ids are positions in the order entries went out.
    written = [orjson.loads(e.payload)["payload"]["i"] for call in backend.calls for e in call]
    for i, published in results.items():
        assert written[int(published.entry_id.split("-")[0]) - 1] == i


async def test_lone_send_goes_straight_out() -> None:
    """A send with nobody else in flight is one append of one entry."""
    backend = CountingBackend()
    published = await StreamSink(backend).send(StreamEvent("usage", "r", "s"))  # type: ignore[arg-type]
    assert [len(c) for c in backend.calls] == [1]
    assert published.entry_id == "1-0"
    assert published.stream_id == "session/s"


async def test_custom_stream_id_and_marshal() -> None:
    """stream_id and marshal_envelope options replace the defaults completely."""
    backend = CountingBackend()
    seen: list[Envelope] = []

    def marshal(envelope: Envelope) -> bytes:
        seen.append(envelope)
        return b"custom"

    options = SinkOptions(stream_id=lambda e: f"custom/{e.run_id}", marshal_envelope=marshal)
    published = await StreamSink(backend, options).send(StreamEvent("tool_start", "run-1", ""))  # type: ignore[arg-type]
    assert published.stream_id == "custom/run-1"
    assert backend.calls[0][0].payload == b"custom"
    assert seen[0].type == "tool_start"
    assert seen[0].timestamp.tzinfo is not None


async def test_marshal_must_return_bytes() -> None:
    """A marshal_envelope returning something else than bytes is a ConfigurationError."""
    options = SinkOptions(marshal_envelope=lambda e: "text")  # type: ignore[arg-type,return-value]
    with pytest.raises(ConfigurationError, match="must return bytes"):
        await StreamSink(CountingBackend(), options).send(StreamEvent("t", "r", "s"))  # type: ignore[arg-type]


async def test_async_on_published_is_awaited() -> None:
    """An async on_published callback is awaited after each successful append."""
    seen: list[str] = []

    async def record(published: PublishedEvent) -> None:
        seen.append(published.entry_id)

    sink = StreamSink(CountingBackend(), SinkOptions(on_published=record))  # type: ignore[arg-type]
    await sink.send_many([StreamEvent("t", "r", "s"), StreamEvent("t", "r", "s")])
    assert seen == ["1-0", "2-0"]


@pytest.mark.parametrize(
    ("stream_id", "problem"),
    [
        ("", "1 to 512"),
        ("a b", "' '"),
        ("a*", "'*'"),
        ("a?", "'?'"),
        ("a[", "'['"),
        ("a]", "']'"),
        ("a\x00", "'\\x00'"),
        ("x" * 513, "1 to 512"),
    ],
)
async def test_stream_ids_pulse_refuses_are_refused(stream_id: str, problem: str) -> None:
    """Stream ids Go's pulse would refuse raise ConfigurationError and nothing is written."""
    backend = CountingBackend()
    sink = StreamSink(backend, SinkOptions(stream_id=lambda e: stream_id))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError) as caught:
        await sink.send(StreamEvent("t", "r", "s"))
    assert problem in str(caught.value)
    assert backend.calls == []


async def test_send_many_validates_everything_first() -> None:
    """One bad event in send_many fails the call before anything is written."""
    backend = CountingBackend()
    sink = StreamSink(backend)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="missing session id"):
        await sink.send_many([StreamEvent("t", "r", "s"), StreamEvent("t", "r", "")])
    assert backend.calls == []
    assert await sink.send_many([]) == []


async def test_bad_event_type_is_refused() -> None:
    """An empty or non-string event type is a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="event type"):
        await StreamSink(CountingBackend()).send(StreamEvent("", "r", "s"))  # type: ignore[arg-type]


async def test_envelope_fields_come_from_the_event() -> None:
    """The envelope carries type, key, run, session, payload and server_data of the event."""
    backend = CountingBackend()
    event = StreamEvent("tool_end", "run-1", "s-1", "key-1", {"a": 1}, {"rows": [1]})
    await StreamSink(backend).send(event)  # type: ignore[arg-type]
    doc = orjson.loads(backend.calls[0][0].payload)
    assert list(doc) == [
        "type",
        "event_key",
        "run_id",
        "session_id",
        "timestamp",
        "payload",
        "server_data",
    ]
    assert doc["server_data"] == {"rows": [1]}
    assert doc["payload"] == {"a": 1}
    assert backend.calls[0][0].name == "tool_end"


async def test_options_are_validated() -> None:
    """Non-callable sink options are refused when the options are built."""
    with pytest.raises(
        ConfigurationError,
        match=r"SinkOptions\.stream_id='session/x' is invalid: expected a callable",
    ):
        SinkOptions(stream_id="session/x")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"SinkOptions\.on_published=42"):
        SinkOptions(on_published=42)  # type: ignore[arg-type]


async def test_recording_sink_checks_like_the_real_one() -> None:
    """RecordingSink keeps sent events, refuses a missing session id and sends after close."""
    async with RecordingSink() as sink:
        await sink.send(StreamEvent("tool_start", "r", "s"))
        await sink.send_many([StreamEvent("usage", "r", "s")])
        with pytest.raises(ConfigurationError):
            await sink.send(StreamEvent("usage", "r", ""))
        assert [e.type for e in sink.events] == ["tool_start", "usage"]
        assert [p.entry_id for p in sink.published] == ["1-0", "2-0"]
        assert len(sink.by_type("usage")) == 1
    with pytest.raises(SinkClosedError):
        await sink.send(StreamEvent("usage", "r", "s"))


def _nested(depth: int, leaf: object = 1) -> object:
    """``depth`` lists around ``leaf``, built without recursion."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def _depth_limit(message: str) -> int:
    match = re.search(r"nesting deeper than (\d+) levels", message)
    assert match, message
    return int(match[1])


async def test_payload_with_a_reference_cycle_is_refused() -> None:
    """A payload that contains itself is a ConfigurationError naming where the cycle closes,
    not a RecursionError; nothing is written."""
    backend = CountingBackend()
    sink = StreamSink(backend)  # type: ignore[arg-type]
    loop: list[object] = []
    loop.append(loop)
    mapping: dict[str, object] = {"x": 1}
    mapping["self"] = mapping
    through_tuple: list[object] = []
    through_tuple.append(("t", through_tuple))
    cases = [
        (loop, "reference cycle at payload[0] (it is payload again)"),
        ({"a": {"b": loop}}, "reference cycle at payload.a.b[0] (it is payload.a.b again)"),
        (mapping, "reference cycle at payload.self (it is payload again)"),
        ([through_tuple], "reference cycle at payload[0][0][1] (it is payload[0] again)"),
    ]
    for payload, fragment in cases:
        with pytest.raises(ConfigurationError) as caught:
            await sink.send(StreamEvent("t", "r", "s", payload=payload))
        assert fragment in str(caught.value)
        with pytest.raises(ConfigurationError, match="reference cycle"):
            await sink.send_many(
                [StreamEvent("t", "r", "s"), StreamEvent("t", "r", "s", payload=payload)]
            )
    assert backend.calls == []


async def test_shared_values_are_not_cycles() -> None:
    """The same list twice in a payload is no cycle: it is sent, and a bad value after it is
    still found."""
    backend = CountingBackend()
    sink = StreamSink(backend)  # type: ignore[arg-type]
    shared = [1, 2]
    await sink.send(StreamEvent("t", "r", "s", payload={"a": shared, "b": [shared, shared]}))
    with pytest.raises(ConfigurationError, match=r"at payload\.c \(a object\)"):
        await sink.send(
            StreamEvent("t", "r", "s", payload={"a": shared, "b": shared, "c": object()})
        )
    assert len(backend.calls) == 1


async def test_payload_nested_too_deep_is_refused() -> None:
    """Nesting past what orjson writes, or far past the interpreter's recursion limit, is a
    ConfigurationError saying how deep is allowed; the limit itself is sent."""
    backend = CountingBackend()
    sink = StreamSink(backend)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError) as caught:
        await sink.send(StreamEvent("t", "r", "s", payload=_nested(300)))
    limit = _depth_limit(str(caught.value))
    assert 100 <= limit < 300
    assert "at payload[0][0]" in str(caught.value)
    assert len(str(caught.value)) < 400  # the path is cut short
    await sink.send(StreamEvent("t", "r", "s", payload=_nested(limit)))
    for payload in (
        _nested(limit + 1),
        _nested(sys.getrecursionlimit() * 50),
        {"deep": _nested(limit)},
        [{"k": v} for v in [_nested(limit)]],
    ):
        with pytest.raises(ConfigurationError, match="nesting deeper than"):
            await sink.send(StreamEvent("t", "r", "s", payload=payload))
        with pytest.raises(ConfigurationError, match="nesting deeper than"):
            await sink.send_many(
                [StreamEvent("t", "r", "s"), StreamEvent("t", "r", "s", payload=payload)]
            )
    assert len(backend.calls) == 1


async def test_deep_values_in_text_fields_are_refused_briefly() -> None:
    """A deeply nested value where text belongs is refused with a short message, not a
    RecursionError from its repr."""
    sink = StreamSink(CountingBackend())  # type: ignore[arg-type]
    deep = _nested(sys.getrecursionlimit() * 50)
    for event, fragment in (
        (StreamEvent(deep, "r", "s"), "event type must be a non-empty string, got [[["),  # type: ignore[arg-type]
        (StreamEvent("t", deep, "s"), "event field run_id must be a string, got list [[["),  # type: ignore[arg-type]
        (StreamEvent("t", "r", "s", deep), "event field event_key must be a string"),  # type: ignore[arg-type]
    ):
        with pytest.raises(ConfigurationError) as caught:
            await sink.send(event)
        assert fragment in str(caught.value)
        assert len(str(caught.value)) < 300


FRAME_BREAKING_TYPES = [
    ("a\nb", "'\\n' (U+000A) at index 1"),
    ("a\r", "'\\r' (U+000D) at index 1"),
    ("\x00", "U+0000"),
    ("tab\there", "U+0009"),
    ("\x1b[31mred", "U+001B"),
    ("del\x7f", "U+007F"),
    ("next\x85line", "U+0085"),
    ("line\u2028sep", "U+2028"),
    ("para\u2029sep", "U+2029"),
    ("\u202eevil", "U+202E"),
    ("zero\u200bwidth", "U+200B"),
    ("\ufeffbom", "U+FEFF"),
    ("lone\ud800", "U+D800"),
    ("nb\u00a0sp", "U+00A0"),
]


@pytest.mark.parametrize(
    ("event_type", "fragment"), FRAME_BREAKING_TYPES, ids=[t[1] for t in FRAME_BREAKING_TYPES]
)
async def test_event_types_that_break_frames_are_refused(event_type: str, fragment: str) -> None:
    """An event type becomes an SSE ``event:`` line and a terminal line: control, format,
    separator and surrogate characters are refused, naming the character; nothing is written."""
    backend = CountingBackend()
    sink = StreamSink(backend)  # type: ignore[arg-type]
    for _ in range(2):  # refused again: a bad type is never remembered as checked
        with pytest.raises(ConfigurationError) as caught:
            await sink.send(StreamEvent(event_type, "r", "s"))
        assert "event type" in str(caught.value)
        assert fragment in str(caught.value), str(caught.value)
        assert "\n" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="event type"):
        await sink.send_many([StreamEvent("ok", "r", "s"), StreamEvent(event_type, "r", "s")])
    assert backend.calls == []


async def test_printable_event_types_are_sent() -> None:
    """Spaces, accents, other scripts and emoji are printable; an EventType member is sent as its
    plain value."""
    backend = CountingBackend()
    sink = StreamSink(backend)  # type: ignore[arg-type]
    types = ["tool_start", "with space", "résumé", "日本語", "emoji 🙂", EventType.TOOL_END]
    for event_type in types:
        await sink.send(StreamEvent(event_type, "r", "s"))
    names = [call[0].name for call in backend.calls]
    assert names == ["tool_start", "with space", "résumé", "日本語", "emoji 🙂", "tool_end"]
    assert type(names[-1]) is str


async def test_event_types_are_checked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A runtime sends few event types many times: each is checked once, not on every send."""
    checked: list[str] = []
    real = sink_module.validate_event_type

    def counting(value: object) -> str:
        checked.append(str(value))
        return real(value)

    monkeypatch.setattr(sink_module, "validate_event_type", counting)
    sink = StreamSink(CountingBackend())  # type: ignore[arg-type]
    for _ in range(50):
        await sink.send(StreamEvent("tool_start", "r", "s"))
    await sink.send_many([StreamEvent("usage", "r", "s")] * 50)
    assert checked == ["tool_start", "usage"]


async def test_each_session_gets_its_own_checked_stream_id() -> None:
    """Sends alternating between sessions each go to their own session's stream, and a bad
    session id is refused even right after a good one (and does not stop the good one after)."""
    backend = CountingBackend()
    sink = StreamSink(backend)  # type: ignore[arg-type]
    a, b = "a", "b"
    for session in (a, a, b, a, b, b):
        published = await sink.send(StreamEvent("t", "r", session))
        assert published.stream_id == f"session/{session}"
    with pytest.raises(ConfigurationError, match="' '"):
        await sink.send(StreamEvent("t", "r", "bad session"))
    with pytest.raises(ConfigurationError, match="lone surrogate"):
        await sink.send(StreamEvent("t", "r", "bad\udc80"))
    await sink.send(StreamEvent("t", "r", a))
    streams = [call[0].stream_id.removeprefix("session/") for call in backend.calls]
    assert streams == ["a", "a", "b", "a", "b", "b", "a"]


async def test_custom_stream_ids_are_asked_for_every_event() -> None:
    """With ``SinkOptions.stream_id`` each event's stream is the callable's answer for it, even
    when its session id is the one of the event before."""
    backend = CountingBackend()
    sink = StreamSink(backend, SinkOptions(stream_id=lambda e: f"run/{e.run_id}"))  # type: ignore[arg-type]
    for run in ("1", "2", "1"):
        await sink.send(StreamEvent("t", run, "s"))
    assert [call[0].stream_id for call in backend.calls] == ["run/1", "run/2", "run/1"]


@pytest.mark.parametrize("field", ["run_id", "session_id", "event_key"])
@pytest.mark.parametrize("custom_stream_id", [False, True])
async def test_text_fields_with_lone_surrogates_are_refused(
    field: str, custom_stream_id: bool
) -> None:
    """A lone surrogate cannot be encoded as UTF-8: the error names the field, whichever stream
    id option is in use, and nothing is written."""
    backend = CountingBackend()
    options = SinkOptions(stream_id=lambda e: "fixed") if custom_stream_id else SinkOptions()
    sink = StreamSink(backend, options)  # type: ignore[arg-type]
    fields = {"run_id": "r", "session_id": "s", "event_key": "k", field: "bad\udc80"}
    event = StreamEvent("t", fields["run_id"], fields["session_id"], fields["event_key"], 1)
    for send in (lambda: sink.send(event), lambda: sink.send_many([event])):
        with pytest.raises(ConfigurationError) as caught:
            await send()
        expected = (
            f"event field {field} 'bad\\udc80' contains a lone surrogate '\\udc80' at index 3"
        )
        assert expected in str(caught.value)
    assert backend.calls == []
