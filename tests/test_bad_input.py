"""Bad input gets a clear streamsink error, never a raw TypeError/AttributeError or a redis-py
exception, and nothing is written (docs/reliability.md, "Bad input").

Each row names the input, the error class expected, and a fragment of its message; every error
must also be a :class:`StreamsinkError` defined by streamsink itself.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import anyio
import pytest

import streamsink
from streamsink import (
    AckError,
    BackendClosedError,
    BackendNotFoundError,
    ClosedError,
    ConfigurationError,
    RuntimeStreams,
    SinkClosedError,
    SinkOptions,
    StartPosition,
    StreamEvent,
    StreamSink,
    StreamsinkError,
    SubscriptionError,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the redis backend runs on asyncio only


def assert_streamsink_error(exc: BaseException) -> None:
    """A streamsink error, raised by streamsink: not a driver or builtin exception in disguise."""
    assert isinstance(exc, StreamsinkError), repr(exc)
    assert type(exc).__module__.startswith("streamsink"), type(exc)
    assert not any(
        cls.__module__.partition(".")[0] in ("redis", "fakeredis") for cls in type(exc).__mro__
    )


# -- URLs ------------------------------------------------------------------------------------------

# (url, error, message fragment). Port 1 on localhost: nothing listens there, so a row that got
# as far as connecting would fail with BackendUnavailableError instead of the error it expects.
BAD_URLS: list[tuple[Any, type[StreamsinkError], str]] = [
    ("", ConfigurationError, "has no scheme"),
    ("not a url", ConfigurationError, "has no scheme"),
    ("://host", ConfigurationError, "invalid scheme"),
    ("redis://h:notaport/0", ConfigurationError, "bad port"),
    ("redis://h:99999/0", ConfigurationError, "bad port"),
    ("redis://[::1/0", ConfigurationError, "is malformed"),
    ("redis://127.0.0.1:1/abc", ConfigurationError, "expected /<db number>"),
    ("redis://127.0.0.1:1/1?db=2", ConfigurationError, "give one"),
    ("unix://", ConfigurationError, "no socket path"),
    ("fakeredis://name:1", ConfigurationError, "credentials or a port"),
    ("memory:///path", ConfigurationError, "must not have a path"),
    (123, ConfigurationError, "got int"),
    (b"memory://", ConfigurationError, "got bytes"),
    # unknown schemes
    ("kafka://broker:9092", BackendNotFoundError, "no streamsink backend for scheme 'kafka'"),
    ("memroy://", BackendNotFoundError, "did you mean 'memory'"),
    ("rediss+sentinel://h", BackendNotFoundError, "no streamsink backend"),
    # unknown or out-of-range query options
    ("memory://?bogus=1", ConfigurationError, "accepted: maxlen"),
    ("memory://?maxlen=-1", ConfigurationError, "maxlen=-1 is invalid"),
    ("memory://?maxlen=1e3", ConfigurationError, "expected an integer"),
    ("memory://?maxlen=1&maxlen=2", ConfigurationError, "more than once"),
    ("memory://?yield_every=0", ConfigurationError, "yield_every=0 is invalid"),
    ("fakeredis://?socket_timeout=1", ConfigurationError, "unknown fakeredis:// URL option"),
    ("redis://127.0.0.1:1/0?bogus=1", ConfigurationError, "accepted: maxlen, key_prefix"),
    ("redis://127.0.0.1:1/0?maxlen=-5", ConfigurationError, "maxlen=-5"),
    ("redis://127.0.0.1:1/0?maxlen=99999999999999999999999", ConfigurationError, "<= 9223"),
    ("redis://127.0.0.1:1/0?block_ms=0", ConfigurationError, "block_ms=0"),
    ("redis://127.0.0.1:1/0?count=abc", ConfigurationError, "count='abc'"),
    ("redis://127.0.0.1:1/0?socket_timeout=-1", ConfigurationError, "socket_timeout=-1"),
    ("redis://127.0.0.1:1/0?socket_timeout=nan", ConfigurationError, "socket_timeout=nan"),
    ("redis://127.0.0.1:1/0?socket_timeout=inf", ConfigurationError, "socket_timeout=inf"),
    ("redis://127.0.0.1:1/0?max_connections=0", ConfigurationError, "max_connections=0"),
    ("redis://127.0.0.1:1/0?client_name=a%20b", ConfigurationError, "without spaces"),
    ("rediss://127.0.0.1:1/0?ssl_cert_reqs=maybe", ConfigurationError, "ssl_cert_reqs"),
    ("rediss://127.0.0.1:1/0?ssl_check_hostname=perhaps", ConfigurationError, "a boolean"),
]


@pytest.mark.parametrize(("url", "error", "fragment"), BAD_URLS, ids=[repr(r[0]) for r in BAD_URLS])
async def test_bad_url(url: Any, error: type[StreamsinkError], fragment: str) -> None:
    with pytest.raises(error, match=None) as info:
        async with streamsink.connect(url):
            pass
    assert_streamsink_error(info.value)
    assert fragment in str(info.value), str(info.value)


async def test_a_password_never_appears_in_an_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        await streamsink.open_backend("redis://user:s3cret@127.0.0.1:1/0?bogus=1")
    assert "s3cret" not in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        await streamsink.open_backend("redis://user:s3cret@[::1/0")
    assert "s3cret" not in str(info.value)


# -- subscriber options ----------------------------------------------------------------------------

BAD_OPTIONS: list[tuple[dict[str, Any], str]] = [
    ({"buffer": 0}, "buffer=0"),
    ({"buffer": True}, "buffer=True"),
    ({"fetch_count": 0}, "fetch_count=0"),
    ({"ack_grace_period": -1}, "ack_grace_period=-1"),
    ({"ack_grace_period": float("nan")}, "ack_grace_period=nan"),
    ({"claim_interval": 0}, "claim_interval=0"),
    ({"reconnect_timeout": float("inf")}, "reconnect_timeout=inf"),
    ({"max_deliveries": -1}, "max_deliveries=-1"),
    ({"group": ""}, "group=''"),
    ({"group": "g\ud800"}, "contains a lone surrogate '\\ud800' at index 1"),
    ({"consumer_name": 5}, "consumer_name=5"),
    ({"consumer_name": "\udfffc"}, "consumer_name='\\udfffc' is invalid"),
    ({"decoder": 3}, "decoder=3"),
    ({"start": "oldest"}, "StartPosition.newest()"),
    ({"on_error": "print"}, "on_error='print'"),
    ({"topic": ""}, "topic='' is invalid: expected None for no filter, or topic_pattern='^$'"),
    ({"topic": 5}, "topic=5 is invalid: expected a topic (a non-empty string)"),
    ({"topic_pattern": "("}, "topic pattern must be a valid regex: missing ), unterminated"),
    ({"topic_pattern": "(a)\\1"}, "backreference '\\1' at position 3: RE2 has no backreferences"),
    ({"topic_pattern": b"ops"}, "expected a regular expression (RE2 syntax) as a string"),
    ({"buffr": 8}, "unknown subscriber option(s) buffr; accepted: group"),
]


@pytest.mark.parametrize(
    ("overrides", "fragment"), BAD_OPTIONS, ids=[str(r[0]) for r in BAD_OPTIONS]
)
async def test_bad_subscriber_option(overrides: dict[str, Any], fragment: str) -> None:
    async with streamsink.connect("memory://bad-options") as streams:
        with pytest.raises(ConfigurationError) as info:
            streams.new_subscriber(**overrides)
    assert_streamsink_error(info.value)
    assert fragment in str(info.value), str(info.value)


def test_bad_start_positions() -> None:
    for make in (
        lambda: StartPosition.after(""),
        lambda: StartPosition.after(5),  # type: ignore[arg-type]
        lambda: StartPosition.at("2026-01-01"),  # type: ignore[arg-type]
    ):
        with pytest.raises(ConfigurationError) as info:
            make()
        assert_streamsink_error(info.value)


# -- events and stream ids, on every backend -------------------------------------------------------


@pytest.fixture(params=["memory", "fakeredis", pytest.param("redis", marks=pytest.mark.redis)])
async def streams(request: pytest.FixtureRequest) -> AsyncIterator[RuntimeStreams]:
    """Streams on a fresh memory broker, a fresh fakeredis server, or the real test Redis."""
    name = f"bad-{uuid.uuid4().hex[:8]}"
    url = {
        "memory": f"memory://{name}",
        "fakeredis": f"fakeredis://{name}",
        "redis": str(request.getfixturevalue("redis_url")) if request.param == "redis" else "",
    }[request.param]
    async with streamsink.connect(url) as opened:
        yield opened


async def written(streams: RuntimeStreams, stream_id: str) -> int:
    reader = await streams.backend.open_reader(stream_id, StartPosition.oldest())
    try:
        return len(await reader.read(100, 0))
    finally:
        await reader.aclose()


class Unencodable:
    pass


def cyclic() -> dict[str, Any]:
    loop: dict[str, Any] = {"n": 1}
    loop["again"] = [loop]
    return {"loop": loop}


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": value}
    return value


class NotAStreamEvent:
    """Implements the Event protocol by hand, with server_data bytes nobody checked."""

    type = "tool_start"
    run_id = "r"
    event_key = ""
    payload = None
    server_data = b"{not json"

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id


def bad_events(session: str) -> list[tuple[str, Any, str]]:
    """(what, event, message fragment): events send() must refuse, writing nothing."""
    return [
        ("missing session id", StreamEvent("tool_start", "r"), "stream event missing session id"),
        ("empty type", StreamEvent("", "r", session), "event type must be a non-empty string"),
        ("type not a string", StreamEvent(7, "r", session), "got 7"),  # type: ignore[arg-type]
        ("run_id not a string", StreamEvent("t", 5, session), "run_id must be a string, got int"),  # type: ignore[arg-type]
        ("event_key not a string", StreamEvent("t", "r", session, event_key=["k"]), "event_key"),  # type: ignore[arg-type]
        (
            "object deep in the payload",
            StreamEvent("t", "r", session, payload={"a": {"b": [1, Unencodable()]}}),
            "at payload.a.b[1] (a Unencodable)",
        ),
        (
            "set",
            StreamEvent("t", "r", session, payload={"tags": {1, 2}}),
            "at payload.tags (a set)",
        ),
        ("bytes", StreamEvent("t", "r", session, payload=b"raw"), "at payload (a bytes)"),
        (
            "Decimal",
            StreamEvent("t", "r", session, payload=[Decimal("1.5")]),
            "payload[0] (a Decimal)",
        ),
        ("int key", StreamEvent("t", "r", session, payload={1: "x"}), "payload[1] (key)"),
        (
            "int over 64 bits",
            StreamEvent("t", "r", session, payload={"n": 2**70}),
            "at payload.n (a int)",
        ),
        (
            "lone surrogate",
            StreamEvent("t", "r", session, payload={"s": "\ud800"}),
            "payload.s (a str)",
        ),
        (
            "reference cycle",
            StreamEvent("t", "r", session, payload=cyclic()),
            "reference cycle at payload.loop.again[0] (it is payload.loop again)",
        ),
        (
            "nested past orjson's limit",
            StreamEvent("t", "r", session, payload=nested(300)),
            "levels at payload.k.k.k",
        ),
        (
            "nested past the recursion limit",
            StreamEvent("t", "r", session, payload=nested(sys.getrecursionlimit() * 5)),
            "nesting deeper than",
        ),
        ("newline in type", StreamEvent("a\nb", "r", session), "contains '\\n' (U+000A)"),
        ("CR in type", StreamEvent("a\rb", "r", session), "(U+000D) at index 1"),
        ("escape in type", StreamEvent("\x1b[2J", "r", session), "(U+001B) at index 0"),
        ("bidi override in type", StreamEvent("x\u202e", "r", session), "(U+202E)"),
        ("line separator in type", StreamEvent("x\u2028", "r", session), "(U+2028)"),
        ("lone surrogate in type", StreamEvent("\ud800", "r", session), "event type '\\ud800'"),
        (
            "lone surrogate in run_id",
            StreamEvent("t", "r\ud800", session),
            "event field run_id 'r\\ud800' contains a lone surrogate '\\ud800' at index 1",
        ),
        (
            "lone surrogate in event_key",
            StreamEvent("t", "r", session, event_key="\udc00"),
            "event field event_key '\\udc00' contains a lone surrogate '\\udc00' at index 0",
        ),
        (
            "lone surrogate in session_id",
            StreamEvent("t", "r", session + "\ud800"),
            "event field session_id",
        ),
        ("unchecked server_data", NotAStreamEvent(session), "server_data is not valid JSON"),
        ("not an event", "tool_start", "expected an event with type, run_id"),
        ("None", None, "got NoneType"),
    ]


BAD_EVENT_IDS = [what for what, _, _ in bad_events("s")]


@pytest.mark.parametrize("what", BAD_EVENT_IDS)
async def test_bad_event_writes_nothing(streams: RuntimeStreams, what: str) -> None:
    session = f"bad-{uuid.uuid4().hex[:8]}"
    _, event, fragment = next(row for row in bad_events(session) if row[0] == what)
    with pytest.raises(ConfigurationError) as info:
        await streams.sink.send(event)
    assert_streamsink_error(info.value)
    assert fragment in str(info.value), str(info.value)
    # send_many validates everything first: a bad event among good ones writes nothing at all.
    good = StreamEvent("tool_start", "r", session)
    with pytest.raises(ConfigurationError):
        await streams.sink.send_many([good, event, good])
    assert await written(streams, f"session/{session}") == 0


async def test_send_many_needs_an_iterable(streams: RuntimeStreams) -> None:
    with pytest.raises(ConfigurationError, match="iterable of events") as info:
        await streams.sink.send_many(StreamEvent("t", "r", "s"))  # type: ignore[arg-type]
    assert_streamsink_error(info.value)


BAD_STREAM_IDS = [
    ("space", "a b", "contains ' '"),
    ("NUL", "a\x00b", "contains '\\x00'"),
    ("star", "a*", "contains '*'"),
    ("question mark", "a?", "contains '?'"),
    ("open bracket", "[a", "contains '['"),
    ("close bracket", "a]", "contains ']'"),
    ("513 characters", "x" * 513, "1 to 512 characters, got 513"),
    ("empty", "", "1 to 512 characters, got 0"),
    ("not a string", 5, "must be a string, got int"),
    ("lone surrogate", "a\ud800b", "contains a lone surrogate '\\ud800' at index 1"),
    ("lone low surrogate", "\udfff", "contains a lone surrogate '\\udfff' at index 0"),
]


@pytest.mark.parametrize(
    ("stream_id", "fragment"), [r[1:] for r in BAD_STREAM_IDS], ids=[r[0] for r in BAD_STREAM_IDS]
)
async def test_stream_ids_pulse_would_reject(
    streams: RuntimeStreams, stream_id: Any, fragment: str
) -> None:
    sink = StreamSink(streams.backend, SinkOptions(stream_id=lambda event: stream_id))
    with pytest.raises(ConfigurationError) as info:
        await sink.send(StreamEvent("tool_start", "r", "s"))
    assert_streamsink_error(info.value)
    assert fragment in str(info.value), str(info.value)
    subscriber = streams.new_subscriber()
    for subscribe in (subscriber.subscribe, subscriber.subscribe_manual):
        with pytest.raises(ConfigurationError) as info:
            subscribe(stream_id)
        assert fragment in str(info.value)
    # 512 characters is the limit, not over it.
    await StreamSink(streams.backend, SinkOptions(stream_id=lambda e: "x" * 512)).send(
        StreamEvent("t", "r", "s")
    )
    await streams.backend.destroy("x" * 512)


# -- after close -----------------------------------------------------------------------------------


async def test_sends_after_close(streams: RuntimeStreams) -> None:
    event = StreamEvent("tool_start", "r", f"bad-{uuid.uuid4().hex[:8]}")
    sink = StreamSink(streams.backend)
    await sink.aclose()
    await sink.aclose()  # idempotent
    for call in (lambda: sink.send(event), lambda: sink.send_many([event])):
        with pytest.raises(SinkClosedError) as info:
            await call()
        assert_streamsink_error(info.value)
    assert await written(streams, f"session/{event.session_id}") == 0


async def test_sends_and_subscribes_after_the_runtime_closed(streams: RuntimeStreams) -> None:
    subscriber = streams.new_subscriber()
    await streams.aclose()
    with pytest.raises(SinkClosedError) as info:
        await streams.sink.send(StreamEvent("tool_start", "r", "s"))
    assert_streamsink_error(info.value)
    with pytest.raises(SubscriptionError) as sub_info:
        subscriber.subscribe("session/s")
    assert_streamsink_error(sub_info.value)


async def test_a_closed_backend_refuses_everything(streams: RuntimeStreams) -> None:
    backend = streams.backend
    await backend.aclose()
    with pytest.raises(BackendClosedError) as info:  # a ClosedError, as SinkClosedError is
        await StreamSink(backend).send(StreamEvent("tool_start", "r", "s"))
    assert_streamsink_error(info.value)
    assert isinstance(info.value, ClosedError)
    with pytest.raises(BackendClosedError):
        async with streamsink.StreamSubscriber(backend).subscribe("session/s"):
            pass


async def test_acks_after_close(streams: RuntimeStreams) -> None:
    session = f"bad-{uuid.uuid4().hex[:8]}"
    stream = f"session/{session}"
    await streams.sink.send_many(StreamEvent("tool_start", "r", session) for _ in range(2))
    # A stable consumer name: the second subscription gets back what the first held, at once.
    subscriber = streams.new_subscriber(group="g", consumer_name="c", start=StartPosition.oldest())
    async with subscriber.subscribe_manual(stream) as deliveries:
        held = [delivery async for delivery in _take(deliveries, 2)]
    for settle in (
        held[0].ack,
        held[0].nack,
        held[0].in_progress,
        lambda: held[0].term("too late"),
    ):
        with pytest.raises(AckError, match="subscription is closed") as info:
            await settle()
        assert_streamsink_error(info.value)
    # Both entries are still pending: the next consumer gets them.
    async with subscriber.subscribe_manual(stream) as again:
        redelivered = [d async for d in _take(again, 2)]
        for delivery in redelivered:
            await delivery.ack()
    assert [d.entry_id for d in redelivered] == [d.entry_id for d in held]
    await streams.backend.destroy(stream)


async def _take(subscription: Any, count: int) -> AsyncIterator[Any]:
    taken = 0
    async for item in subscription:
        yield item
        taken += 1
        if taken == count:
            return


# -- names at open ---------------------------------------------------------------------------------

BAD_NAMES: list[tuple[str, Any, str]] = [
    ("lone surrogate", "g\ud800", "contains a lone surrogate '\\ud800' at index 1"),
    ("lone low surrogate", "\udc80", "contains a lone surrogate '\\udc80' at index 0"),
    ("empty", "", "must be a non-empty string, got ''"),
    ("not a string", 7, "must be a non-empty string, got 7"),
]


@pytest.mark.parametrize("kind", ["group", "consumer"])
@pytest.mark.parametrize(
    ("name", "fragment"), [r[1:] for r in BAD_NAMES], ids=[r[0] for r in BAD_NAMES]
)
def test_validate_name(kind: str, name: Any, fragment: str) -> None:
    """The core's name rules, which backends apply when a group consumer is opened."""
    with pytest.raises(ConfigurationError) as info:
        streamsink.validate_name(kind, name)
    assert_streamsink_error(info.value)
    assert str(info.value).startswith(f"{kind} name ")
    assert fragment in str(info.value), str(info.value)
    assert streamsink.validate_name(kind, "group-1 é 日本 🙂") == "group-1 é 日本 🙂"


@pytest.mark.parametrize("which", ["group", "consumer"])
async def test_backends_refuse_unencodable_names_at_open(
    streams: RuntimeStreams, which: str
) -> None:
    """A group or consumer name with a lone surrogate, given to the backend SPI directly, is
    refused at open with the core's message; nothing is created."""
    stream = f"bad-{uuid.uuid4().hex[:8]}"
    names = {"group": "g", "consumer": "c", which: "x\ud800"}
    with pytest.raises(ConfigurationError) as info:
        await streams.backend.open_group_consumer(
            stream, names["group"], names["consumer"], StartPosition.oldest()
        )
    assert_streamsink_error(info.value)
    assert f"{which} name 'x\\ud800' contains a lone surrogate" in str(info.value)
    # Nothing was created: a reader finds no stream (no MKSTREAM happened).
    assert await written(streams, stream) == 0


async def test_memory_backend_refuses_bad_names_at_open() -> None:
    """memory:// applies every name rule at open, not only the surrogate one."""
    async with streamsink.connect(f"memory://bad-{uuid.uuid4().hex[:8]}") as streams:
        for group, consumer, fragment in (
            ("", "c", "group name must be a non-empty string"),
            ("g", 5, "consumer name must be a non-empty string, got 5"),
        ):
            with pytest.raises(ConfigurationError, match=fragment):
                await streams.backend.open_group_consumer(
                    "s",
                    group,
                    consumer,
                    StartPosition.oldest(),  # type: ignore[arg-type]
                )


def test_dead_letter_stream_ids_are_validated() -> None:
    """The dead-letter stream a ``dead_letter_stream`` option names is checked as a stream id,
    and an option that raises is reported as the option's fault."""
    from streamsink._streams import dead_letter_stream_id

    assert dead_letter_stream_id(streamsink.default_dead_letter_stream, "s") == "s:dlq"
    for make, fragment in (
        (lambda s: f"{s} dlq", "gave 's dlq' for stream id 's', which is not a valid stream id"),
        (lambda s: f"{s}\udc00", "contains a lone surrogate"),
        (lambda s: 5, "must be a string, got int"),
        (lambda s: "", "1 to 512 characters, got 0"),
        (lambda s: {}["missing"], "dead_letter_stream raised on stream id 's': KeyError"),
    ):
        with pytest.raises(ConfigurationError) as info:
            dead_letter_stream_id(make, "s")
        assert_streamsink_error(info.value)
        assert "SubscriberOptions.dead_letter_stream" in str(info.value)
        assert fragment in str(info.value), str(info.value)
    # The default naming of a stream id near the length limit goes past it: refused, clearly.
    with pytest.raises(ConfigurationError, match="1 to 512 characters, got 516"):
        dead_letter_stream_id(streamsink.default_dead_letter_stream, "x" * 512)


# -- entry ids at open -----------------------------------------------------------------------------

BAD_START_IDS = [
    "abc",
    "1-2-3",
    " 1-0",
    "1-0 ",
    "1_000-0",
    "\u0661-\u0660",  # Arabic-Indic digits
    "\uff11-0",  # a fullwidth digit
    "18446744073709551616-0",
    "0-18446744073709551616",
    "-1-0",
    "1-",
    "-",
    "0x10-0",
    "+1-0",
    "1-\ud800",
]
GOOD_START_IDS = ["0-0", "18446744073709551615-18446744073709551615", "5", "0"]


@pytest.mark.parametrize("group", ["g", None], ids=["group", "fan-out"])
@pytest.mark.parametrize("entry_id", BAD_START_IDS)
async def test_malformed_start_ids_are_refused_at_open(
    streams: RuntimeStreams, entry_id: str, group: str | None
) -> None:
    """Every backend parses an ``after`` start id when the group consumer or reader is opened,
    and refuses one Redis would refuse, at ``async with``, with the same error: not at the
    first read, and never by waiting forever."""
    stream = f"bad-{uuid.uuid4().hex[:8]}"
    subscriber = streams.new_subscriber(group=group, start=StartPosition.after(entry_id))
    for subscribe in (subscriber.subscribe, subscriber.subscribe_manual):
        subscription = subscribe(stream)
        with anyio.fail_after(5), pytest.raises(ConfigurationError) as info:
            async with subscription:
                pass
        assert_streamsink_error(info.value)
        assert "entry id" in str(info.value), str(info.value)
    await streams.backend.destroy(stream)


@pytest.mark.parametrize("entry_id", GOOD_START_IDS)
async def test_start_ids_at_the_edges_are_accepted(streams: RuntimeStreams, entry_id: str) -> None:
    """The smallest and largest ids, and ``<ms>`` alone, open on every backend; a group
    started after one of them gets what follows it."""
    session = f"bad-{uuid.uuid4().hex[:8]}"
    stream = f"session/{session}"
    await streams.sink.send(StreamEvent("tool_start", "r", session))
    for group in ("g", None):
        subscriber = streams.new_subscriber(group=group, start=StartPosition.after(entry_id))
        async with subscriber.subscribe(stream) as events:
            if entry_id.startswith("18446744073709551615"):
                continue  # nothing can follow the last id
            with anyio.fail_after(5):
                event = await events.__anext__()
            assert event.type == "tool_start"
    await streams.backend.destroy(stream)
