"""Topics (pulse field ``t``): sinks derive them, subscriptions filter by them (pulse's rules,
B.8), and a group acknowledges what its filter drops instead of leaving it pending."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import anyio
import pytest

from streamsink import (
    ConfigurationError,
    SinkOptions,
    StreamEvent,
    StreamSink,
    StreamsinkError,
    SubscriberOptions,
    event_topic,
)
from streamsink.backend import Entry, GroupConsumer, Record, StartPosition
from streamsink_memory import MemoryBackend, MemoryBroker
from tests.support.subscriptions import subscriber, take

pytestmark = pytest.mark.anyio

STREAM = "session/s"
# (topic, index) of the entries most tests publish, in order.
MIX: list[str | None] = ["ops", "audit", None, "devops", "ops", "ops2"]


def _event(index: int, topic: str | None = None) -> StreamEvent:
    return StreamEvent("tool_start", f"run-{index}", "s", payload={"index": index}, topic=topic)


async def _publish_mix(backend: MemoryBackend) -> None:
    sink = StreamSink(backend, SinkOptions(topic=event_topic))
    await sink.send_many([_event(i, topic) for i, topic in enumerate(MIX)])


async def _records(backend: MemoryBackend, stream: str = STREAM) -> Sequence[Record]:
    reader = await backend.open_reader(stream, StartPosition.oldest())
    try:
        return await reader.read(1000, 0)
    finally:
        await reader.aclose()


def _indexes(items: Sequence[Any]) -> list[int]:
    return [getattr(item, "event", item).payload["index"] for item in items]


# -- sinks ---------------------------------------------------------------------------------------


async def test_a_sink_writes_the_topic_its_option_derives() -> None:
    """``SinkOptions.topic`` is called per event; its result is the entry's topic, None for
    none, by ``send`` and ``send_many`` alike."""
    backend = MemoryBackend(MemoryBroker())

    def topic(event: Any) -> str | None:
        return None if event.payload["index"] == 1 else f"t{event.payload['index']}"

    sink = StreamSink(backend, SinkOptions(topic=topic))
    await sink.send(_event(0))
    await sink.send_many([_event(1), _event(2)])
    assert [record.topic for record in await _records(backend)] == ["t0", None, "t2"]


async def test_by_default_a_sink_writes_no_topic_whatever_the_event_carries() -> None:
    backend = MemoryBackend(MemoryBroker())
    await StreamSink(backend).send(_event(0, topic="ops"))
    assert [record.topic for record in await _records(backend)] == [None]


async def test_event_topic_publishes_and_relays_each_events_own_topic() -> None:
    """``event_topic`` reads the event's ``topic`` attribute (None without one); a received
    event relayed through such a sink keeps its topic."""
    backend = MemoryBackend(MemoryBroker())

    class Plain:  # the Event protocol without a topic attribute
        type = "tool_start"
        run_id = "r"
        session_id = "s"
        event_key = ""
        payload = None

    class Kind(StrEnum):
        OPS = "ops"

    sink = StreamSink(backend, SinkOptions(topic=event_topic))
    await sink.send_many([_event(0, topic="ops"), Plain(), _event(2, topic=Kind.OPS)])
    records = await _records(backend)
    assert [record.topic for record in records] == ["ops", None, "ops"]
    assert type(records[2].topic) is str
    async with subscriber(backend, group=None).subscribe(STREAM) as events:
        (received,) = await take(events, 1)
    await sink.send(received)  # relayed, e.g. by a bridge, to the same stream
    assert (await _records(backend))[-1].topic == "ops"


BAD_TOPICS: list[tuple[str, Any, str]] = [
    ("not a string", 5, "topic must be a string or None, got int"),
    ("empty", "", "1 to 512 characters, got 0 (None means no topic)"),
    ("513 characters", "x" * 513, "1 to 512 characters, got 513"),
    ("newline", "a\nb", "contains '\\n' (U+000A) at index 1"),
    ("escape", "\x1b[2J", "(U+001B) at index 0"),
    ("bidi override", "ops\u202e", "(U+202E) at index 3"),
    ("zero-width space", "o\u200bps", "(U+200B)"),
    ("lone surrogate", "o\ud800", "(U+D800) at index 1"),
]


@pytest.mark.parametrize(
    ("value", "fragment"), [row[1:] for row in BAD_TOPICS], ids=[row[0] for row in BAD_TOPICS]
)
async def test_a_bad_derived_topic_writes_nothing(value: Any, fragment: str) -> None:
    """A topic that is not a non-empty printable string of at most 512 characters is refused
    with ConfigurationError naming the option and the event; nothing is written, not even the
    good events of a ``send_many``."""
    backend = MemoryBackend(MemoryBroker())
    sink = StreamSink(backend, SinkOptions(topic=lambda event: None if event.run_id else value))
    for send in (
        lambda: sink.send(StreamEvent("tool_start", "", "s")),
        lambda: sink.send_many([_event(0), StreamEvent("tool_start", "", "s"), _event(1)]),
    ):
        with pytest.raises(ConfigurationError) as info:
            await send()
        message = str(info.value)
        assert message.startswith("SinkOptions.topic gave an invalid topic for a 'tool_start'")
        assert fragment in message, message
    assert await _records(backend) == []
    # The limit is 512 characters, not fewer.
    await StreamSink(backend, SinkOptions(topic=lambda event: "x" * 512)).send(_event(0))
    assert [len(record.topic or "") for record in await _records(backend)] == [512]


async def test_a_topic_option_that_raises_writes_nothing() -> None:
    """Whatever the derivation raises is reported as the option's fault (the original error
    chained); an error of streamsink's own goes through as it is."""
    backend = MemoryBackend(MemoryBroker())

    def missing(event: Any) -> str:
        return str(event.payload["topic"])

    with pytest.raises(ConfigurationError) as info:
        await StreamSink(backend, SinkOptions(topic=missing)).send(_event(0))
    assert str(info.value) == "SinkOptions.topic raised on a 'tool_start' event: KeyError('topic')"
    assert isinstance(info.value.__cause__, KeyError)

    def refuse(event: Any) -> str:
        raise ConfigurationError("no topic for you")

    with pytest.raises(ConfigurationError, match=r"^no topic for you$"):
        await StreamSink(backend, SinkOptions(topic=refuse)).send(_event(0))
    assert await _records(backend) == []


def test_the_topic_option_must_be_callable() -> None:
    with pytest.raises(ConfigurationError, match=r"SinkOptions.topic='ops' is invalid: expected"):
        SinkOptions(topic="ops")  # type: ignore[arg-type]


# -- patterns: RE2 syntax, matched as RE2 matches --------------------------------------------------

REFUSED_PATTERNS = [
    ("(", "missing ), unterminated subpattern"),
    ("(a)\\1", "backreference '\\1' at position 3: RE2 has no backreferences"),
    ("(?P<n>a)(?P=n)", "RE2 has no backreferences"),
    ("a(?=b)", "RE2 has no lookarounds"),
    ("(?<!a)b", "RE2 has no lookarounds"),
    ("(?>a)", "RE2 has no atomic groups"),
    ("a*+", "(a possessive repeat): RE2 has none"),
    ("a{2}+", "(a possessive repeat)"),
    ("(?(1)a|b)", "RE2 has no conditionals"),
    ("(?#note)a", "RE2 has no comments"),
    ("ops\\Z", "RE2 has no \\Z; use \\z"),
    ("\\u0041", "'\\u' at position 0 is not an escape RE2 accepts"),
    ("\\N{DIGIT ONE}", "is not an escape RE2 accepts"),
    ("[\\b]", "'\\b' inside [...] at position 1 is not an escape RE2 accepts"),
    ("(?x) a", "flag 'x' at position 0: RE2 knows the flags i, m, s and U only"),
    ("(?a)a", "flag 'a'"),
    ("a{1001}", "RE2 allows at most 1000"),
    ("a{,3}", "a repeat to Python but literal text to RE2"),
    ("(?P<é>a)", "bad group name 'é'"),
    ("\\é", "escaped non-ASCII character"),
    ("\\pL", "RE2 syntax that Python's re cannot match"),
    ("(?U)a+", "Python's re has no ungreedy mode"),
    ("a(?i)b", "takes them only at the start of the pattern; write (?flags:...)"),
    ("[[:word]]x:]", "unknown ASCII class"),
    ("\\", "trailing backslash"),
]


@pytest.mark.parametrize(("pattern", "fragment"), REFUSED_PATTERNS)
def test_topic_patterns_refuse_what_re2_refuses(pattern: str, fragment: str) -> None:
    """What Go's regexp refuses (or RE2 and Python would read differently) is refused with
    pulse's message, naming the option and the pattern."""
    with pytest.raises(ConfigurationError) as info:
        SubscriberOptions(topic_pattern=pattern)
    message = str(info.value)
    assert message.startswith(
        f"SubscriberOptions.topic_pattern={pattern!r} is invalid: "
        "topic pattern must be a valid regex: "
    ), message
    assert fragment in message, message


# (pattern, topic, whether it matches, as Go's regexp.MatchString says)
MATCHES = [
    ("ops", "devops-2", True),  # unanchored
    ("^ops$", "ops", True),
    ("^ops$", "devops", False),
    ("^$", "", True),
    ("ops$", "ops\n", False),  # RE2's $ is the end of the text
    ("(?m)ops$", "ops\n", True),
    ("ops\\z", "ops", True),
    ("(?<name>o)ps", "ops", True),
    ("\\Q.*\\E", ".*", True),
    ("\\Q.*\\E", "ops", False),
    ("^[[:digit:]]+$", "123", True),
    ("^[[:^digit:]]+$", "abc", True),
    ("^[[:^digit:]]+$", "a1", False),
    ("^\\d+$", "\u0661\u0662", False),  # RE2's \d is ASCII
    ("^\\w+$", "caf\u00e9", False),  # and so is \w
    ("^[^\\W]+$", "caf\u00e9", False),
    ("\\s", "\v", False),  # RE2's \s has no vertical tab
    ("[\\S]", "\v", True),
    ("\\bops\\b", "dev ops", True),
    ("\\bops", "\u00e9ops", True),  # é is no word character to RE2
    ("\\B", "", True),
    ("^\\x{41}\\101\\x41$", "AAA", True),
    ("^\\12$", "\n", True),  # octal, not a backreference
    ("(?i)^caf\u00c9$", "caf\u00e9", True),  # Unicode case folding
    ("^a{}$", "a{}", True),
    ("^+ops", "ops", True),  # a repeated anchor
]


@pytest.mark.parametrize(("pattern", "topic", "expected"), MATCHES)
def test_topic_patterns_match_as_re2_does(pattern: str, topic: str, expected: bool) -> None:
    """A pattern selects the entries Go's ``regexp.MatchString`` would select."""
    from streamsink._topics import topic_filter

    accepts = topic_filter(None, SubscriberOptions(topic_pattern=pattern).topic_pattern)
    assert accepts is not None
    assert accepts(topic) is expected
    if topic == "":
        assert accepts(None) is expected  # no topic is the topic ""


# -- subscriptions filter ------------------------------------------------------------------------

MODES = ["group", "fan-out", "group-manual", "fan-out-manual"]


async def _take_filtered(
    mode: str, count: int, **filters: Any
) -> tuple[list[Any], Any, MemoryBackend]:
    """Publish ``MIX`` and a last entry without topic (index 99), take the ``count`` items the
    filtered subscription hands over (settling deliveries in manual mode) and check that no
    more come; return them with the statistics (after closing) and the backend."""
    backend = MemoryBackend(MemoryBroker())
    await _publish_mix(backend)
    await StreamSink(backend).send(_event(99))
    group = None if mode.startswith("fan-out") else "g"
    made = subscriber(backend, group=group, **filters)
    opened = made.subscribe_manual(STREAM) if mode.endswith("manual") else made.subscribe(STREAM)
    async with opened as items:
        got = await take(items, count)
        for item in got:
            if mode.endswith("manual"):
                await item.ack()
        with anyio.move_on_after(0.2):
            extra = await items.__anext__()
            raise AssertionError(f"unexpected {extra!r}")
    return got, items.statistics(), backend


@pytest.mark.parametrize("mode", MODES)
async def test_an_exact_topic_selects_entries_with_that_topic_only(mode: str) -> None:
    got, stats, _ = await _take_filtered(mode, 2, topic="ops")
    assert _indexes(got) == [0, 4]  # not "devops", nor "ops2"
    assert [item.topic for item in got] == ["ops", "ops"]
    assert (stats.received, stats.filtered) == (7, 5), stats


@pytest.mark.parametrize("mode", MODES)
async def test_a_topic_pattern_matches_anywhere_in_the_topic(mode: str) -> None:
    got, stats, _ = await _take_filtered(mode, 4, topic_pattern="ops")
    assert _indexes(got) == [0, 3, 4, 5]
    assert stats.filtered == 3, stats


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"topic_pattern": "^ops$"}, [0, 4]),
        ({"topic_pattern": "^$"}, [2, 99]),  # the entries without a topic
        ({"topic_pattern": "^(audit|ops2)$"}, [1, 5]),
        ({"topic_pattern": ""}, [0, 1, 2, 3, 4, 5, 99]),  # filters nothing, as in pulse
        ({"topic": "audit", "topic_pattern": "^ops"}, [1]),  # topic wins
    ],
    ids=["anchored", "no topic", "alternatives", "empty", "topic wins"],
)
async def test_topic_filters_select_as_pulse_does(
    filters: dict[str, str], expected: list[int]
) -> None:
    got, stats, _ = await _take_filtered("group", len(expected), **filters)
    assert _indexes(got) == expected
    assert stats.filtered == 7 - len(expected)


@pytest.mark.parametrize("manual", [False, True], ids=["auto", "manual"])
async def test_a_group_acknowledges_what_its_filter_drops(manual: bool) -> None:
    """Filtered-out entries of a group do not stay pending (pulse leaves them pending forever):
    they are acknowledged while the subscription runs, like the ones the application
    finished, not only when it closes."""
    backend = MemoryBackend(MemoryBroker())
    await _publish_mix(backend)
    made = subscriber(backend, group="g", topic="ops")
    opened = made.subscribe_manual(STREAM) if manual else made.subscribe(STREAM)
    async with opened as items:
        got = await take(items, 2)
        for item in got:
            if manual:
                await item.ack()
        await anyio.sleep(0.1)
        pending = [entry.entry_id for entry in backend.broker.pending(STREAM, "g")]
        # Only what the application still holds: in auto mode, the event it took last.
        assert pending == ([] if manual else [got[-1].entry_id])
    assert _indexes(got) == [0, 4]
    assert backend.broker.pending(STREAM, "g") == []
    assert items.statistics().acknowledged == 6


class _CountingBackend(MemoryBackend):
    """A memory backend that counts its group consumers' reads and acks."""

    reads = 0
    acks = 0
    acked: set[str]

    async def open_group_consumer(self, *args: Any, **kwargs: Any) -> Any:
        self.acked = set()
        return _CountingConsumer(await super().open_group_consumer(*args, **kwargs), self)


class _CountingConsumer:
    def __init__(self, inner: GroupConsumer, backend: _CountingBackend) -> None:
        self._inner = inner
        self._backend = backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @property
    def consumer(self) -> str:
        return self._inner.consumer

    async def read_new(self, count: int, block: float) -> Sequence[Record]:
        records = await self._inner.read_new(count, block)
        if records:
            self._backend.reads += 1
        return records

    async def ack(self, entry_ids: Sequence[str]) -> None:
        self._backend.acks += 1
        self._backend.acked.update(entry_ids)
        await self._inner.ack(entry_ids)


@pytest.mark.parametrize("manual", [False, True], ids=["auto", "manual"])
async def test_filtered_entries_are_acknowledged_in_batches_and_read_in_full_batches(
    manual: bool,
) -> None:
    """Entries filtered out are acknowledged together, not one round trip each; and a stream
    whose first entries are all filtered out is still read a full batch at a time."""
    backend = _CountingBackend(MemoryBroker())
    sink = StreamSink(backend, SinkOptions(topic=event_topic))
    await sink.send_many([_event(i, topic="noise") for i in range(300)])
    await sink.send(_event(300, topic="ops"))
    made = subscriber(backend, group="g", topic="ops", fetch_count=100)
    opened = made.subscribe_manual(STREAM) if manual else made.subscribe(STREAM)
    async with opened as items:
        (item,) = await take(items, 1)
        if manual:
            await item.ack()
        assert _indexes([item]) == [300]
    assert len(backend.acked) == 301
    assert backend.acks <= 6, backend.acks
    assert backend.reads <= 6, backend.reads  # not one entry per read
    assert backend.broker.pending(STREAM, "g") == []


async def test_filtered_entries_are_neither_decoded_nor_dead_lettered() -> None:
    """An entry the filter drops is acknowledged as it is: not decoded (an undecodable one is
    no error), and not dead-lettered when redelivered past ``max_deliveries``."""
    backend = MemoryBackend(MemoryBroker())
    sink = StreamSink(backend, SinkOptions(topic=event_topic))
    await backend.append([Entry(STREAM, "tool_start", b"not an envelope", topic="noise")])
    await sink.send(_event(1, topic="noise"))
    errors: list[StreamsinkError] = []
    options: dict[str, Any] = {"group": "g", "consumer_name": "c", "on_error": errors.append}
    # A first consumer takes the noise without settling it: it stays pending, delivered once.
    async with subscriber(backend, **options).subscribe_manual(STREAM) as deliveries:
        await take(deliveries, 2)
    await sink.send(_event(2, topic="ops"))
    # The same consumer, restarted with a filter and max_deliveries=1, gets it back first.
    made = subscriber(backend, max_deliveries=1, topic="ops", **options)
    async with made.subscribe(STREAM) as events:
        got = await take(events, 1)
        await anyio.sleep(0.05)
        stats = events.statistics()
    assert _indexes(got) == [2]
    assert (stats.filtered, stats.decode_errors, stats.dead_lettered) == (2, 0, 0), stats
    assert errors == []
    assert await _records(backend, f"{STREAM}:dlq") == []
    assert backend.broker.pending(STREAM, "g") == []


async def test_dead_letter_subscriptions_are_not_filtered() -> None:
    """Dead letters carry no topic: a filtered subscriber still reads every one of them."""
    backend = MemoryBackend(MemoryBroker())
    await backend.append([Entry(STREAM, "tool_start", b"not an envelope", topic="ops")])
    dead_lettered = anyio.Event()

    def report(error: StreamsinkError) -> None:
        if "dead-lettered" in str(error):
            dead_lettered.set()

    made = subscriber(backend, group="g", topic="ops", on_error=report)
    async with made.subscribe(STREAM):  # undecodable: the pump dead-letters it
        with anyio.fail_after(5):
            await dead_lettered.wait()
    async with made.subscribe_dead_letters(STREAM) as letters:
        (letter,) = await take(letters, 1)
    assert letter.payload == b"not an envelope"
