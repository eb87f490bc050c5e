"""The Go vectors in ``tests/data`` are what Go writes and decodes: regenerated with the Go
toolchain (``tests/data/go/*.go``, standard library only) and compared with the committed files,
so a vector cannot be a guess at Go's behaviour. Without ``go`` on PATH this skips, except under
``CI=true`` (``.ci/run`` installs Debian's ``golang-go``)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from streamsink import (
    ConfigurationError,
    DecodeError,
    Envelope,
    SinkOptions,
    StartPosition,
    StreamSink,
    decode_envelope,
    encode_envelope,
    relay_envelope,
)
from streamsink._topics import topic_filter
from streamsink_memory import MemoryBackend, MemoryBroker

DATA = Path(__file__).resolve().parents[1] / "data"
GENERATOR = "generate.go"
OUTPUTS = ("go-produced-envelopes.json", "go-decoded-envelopes.json", "go-topic-patterns.json")


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        reason = "the Go toolchain is not installed (apt-get install golang-go)"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(f"{reason}; CI=true: the Go vectors must be checked against Go")
        pytest.skip(reason)
    return go


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the generator, run once, wrote its files."""
    go = _go()
    root = tmp_path_factory.mktemp("go-vectors")
    workdir = root / "go"
    workdir.mkdir()
    shutil.copy(DATA / "go" / GENERATOR, workdir / GENERATOR)
    env = {**os.environ, "GO111MODULE": "on", "GOTOOLCHAIN": "local"}
    env.setdefault("GOCACHE", str(root / "gocache"))
    result = subprocess.run(
        [go, "run", GENERATOR],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return root


@pytest.mark.parametrize("name", OUTPUTS)
def test_committed_vectors_are_what_go_produces(name: str, generated: Path) -> None:
    """Running the generator gives the committed file byte for byte."""
    assert (generated / name).read_bytes() == (DATA / name).read_bytes(), (
        f"tests/data/{name} is not what tests/data/go/{GENERATOR} writes: regenerate it"
    )


# -- topic patterns: refused where Go refuses them, matching what Go matches ---------------------

_PATTERNS = json.loads((DATA / "go-topic-patterns.json").read_text())

# What Go's regexp compiles but streamsink refuses, each with the reason its error gives: Python's
# re cannot match Unicode classes or an ungreedy mode, takes flags only at the start, and reads
# {,n} as a repeat where RE2 reads text (so it is refused rather than silently matched otherwise).
_REFUSED_THOUGH_GO_COMPILES = {
    r"\pL": "Unicode class",
    r"\p{Han}": "Unicode class",
    r"\PL": "Unicode class",
    "(?U)a+": "ungreedy",
    "a{,2}": "is a repeat to Python but literal text to RE2",
    "x(?i)ops": "only at the start of the pattern",
}
# go1.19 refuses (?<name>...), which Go 1.22 added as a synonym of (?P<name>...).
_ACCEPTED_THOUGH_GO119_REFUSES = {"(?<n>a)"}
# Python's (?i) folds the dotted and dotless i with i and I; RE2 does not.
_FOLDS_DIFFER = {"\u0130", "\u0131"}


@pytest.mark.parametrize("case", _PATTERNS["results"], ids=lambda case: repr(case["pattern"]))
def test_topic_patterns_select_what_go_selects(case: dict[str, Any]) -> None:
    """A topic pattern is refused where Go's regexp refuses it (with the listed exceptions, each
    refused with its reason) and an accepted one matches exactly the topics Go matches."""
    pattern = case["pattern"]
    try:
        accepts = topic_filter(None, pattern)
    except ConfigurationError as exc:
        refused: str | None = str(exc)
        assert refused.startswith("topic pattern must be a valid regex: "), refused
    else:
        refused = None
    if "go_error" in case:
        assert refused is not None or pattern in _ACCEPTED_THOUGH_GO119_REFUSES, (
            f"Go refuses {pattern!r} ({case['go_error']}), streamsink accepts it"
        )
        return
    if refused is not None:
        assert pattern in _REFUSED_THOUGH_GO_COMPILES, f"Go compiles {pattern!r}: {refused}"
        assert _REFUSED_THOUGH_GO_COMPILES[pattern] in refused
        return
    for topic, go_matches in zip(_PATTERNS["topics"], case["matches"], strict=True):
        ours = True if accepts is None else accepts(topic or None)  # "" is no topic on the wire
        if ours != go_matches and topic in _FOLDS_DIFFER and "(?i)" in pattern:
            continue
        assert ours == go_matches, f"{pattern!r} on {topic!r}: Go {go_matches}, streamsink {ours}"


# -- envelopes Go wrote: decoded, then relayed byte for byte --------------------------------------

_PRODUCED = json.loads((DATA / "go-produced-envelopes.json").read_text())["vectors"]
_DECODED = json.loads((DATA / "go-decoded-envelopes.json").read_text())["results"]


def _bytes(text: str) -> bytes:
    return base64.b64decode(text)


@pytest.mark.parametrize("vector", _PRODUCED, ids=lambda vector: vector["name"])
def test_envelopes_go_wrote_relay_byte_for_byte(vector: dict[str, Any]) -> None:
    """An envelope Go's json.Marshal wrote decodes with its timestamp to the nanosecond, and
    relaying the decoded event writes the very same bytes."""
    data = _bytes(vector["envelope_base64"])
    event = decode_envelope(data)
    seconds, nanosecond = vector["unix_seconds"], vector["nanosecond"]
    assert event.timestamp_ns == seconds * 1_000_000_000 + nanosecond
    if event.timestamp is not None:  # the datetime, to the microsecond
        since_epoch = event.timestamp - datetime(1970, 1, 1, tzinfo=UTC)
        assert since_epoch // timedelta(microseconds=1) == seconds * 1_000_000 + nanosecond // 1000
    assert relay_envelope(event) == data


@pytest.mark.parametrize("vector", _PRODUCED, ids=lambda vector: vector["name"])
def test_a_relaying_sink_writes_what_go_wrote(vector: dict[str, Any]) -> None:
    """Through a sink relaying event timestamps, on a real backend, the entry written is the
    envelope Go wrote."""
    data = _bytes(vector["envelope_base64"])
    event = decode_envelope(data)
    if not event.session_id:
        return  # a sink needs a session id to derive its stream; the codec case is above

    async def relay() -> bytes:
        backend = MemoryBackend(MemoryBroker())
        try:
            sink = StreamSink(backend, SinkOptions(timestamps="event"))
            await sink.send(event)
            reader = await backend.open_reader(
                f"session/{event.session_id}", StartPosition.oldest()
            )
            try:
                (record,) = await reader.read(10, 0)
            finally:
                await reader.aclose()
            assert record.payload is not None
            return record.payload
        finally:
            await backend.aclose()

    assert anyio.run(relay) == data


# What streamsink refuses though loom's decoder reads it, on purpose: an entry without a type
# is not an event (dead letters and other producers' records are told apart by it); Go's sinks
# always write one.
_REFUSED_THOUGH_GO_DECODES = {"empty object": "no 'type'"}
# What streamsink reads though go1.19's time.UnmarshalJSON refuses it: it unescapes the
# timestamp string before parsing it (a JSON string's value), where Go parses the raw bytes.
_ACCEPTED_THOUGH_GO_REFUSES = {"timestamp with escapes"}


@pytest.mark.parametrize("result", _DECODED, ids=lambda result: result["name"])
def test_what_go_decodes_decodes_alike(result: dict[str, Any]) -> None:
    """Every envelope loom's Go decoder reads decodes here too (except the listed ones, refused
    with their reason), with the same text fields, timestamp and server_data bytes; what Go
    refuses is refused."""
    data = _bytes(result["input_base64"])
    name = result["name"]
    if name in _REFUSED_THOUGH_GO_DECODES:
        assert "go_error" not in result
        with pytest.raises(DecodeError, match=_REFUSED_THOUGH_GO_DECODES[name]):
            decode_envelope(data)
        return
    if "go_error" in result and name not in _ACCEPTED_THOUGH_GO_REFUSES:
        with pytest.raises(DecodeError):
            decode_envelope(data)
        return
    event = decode_envelope(data)
    if "go_error" in result:
        return  # accepted on purpose (above)
    for field in ("type", "event_key", "run_id", "session_id"):
        assert getattr(event, field) == _bytes(result.get(field, "")).decode(), field
    if result["has_timestamp"]:
        expected_ns = result.get("unix_seconds", 0) * 1_000_000_000 + result.get("nanosecond", 0)
        assert event.timestamp_ns == expected_ns
        assert event.timestamp_offset == result.get("utc_offset_seconds", 0)
    else:
        assert event.timestamp is None
        assert event.timestamp_ns is None
    if result["has_server_data"] and _bytes(result["server_data_base64"]) != b"null":
        assert event.server_data == _bytes(result["server_data_base64"])
    else:
        assert event.server_data is None
    if not result["has_payload"]:
        assert event.payload is None
        return
    raw = _bytes(result["payload_base64"])
    try:
        expected = json.loads(raw)  # the json module reads any JSON exactly, to its depth limit
    except (RecursionError, UnicodeDecodeError):
        expected = None  # deeper than it reads, or not UTF-8: checked by its bytes below
    if event.payload_exact and expected is not None:
        assert event.payload == expected
    else:
        # Go keeps the bytes of what Python cannot hold exactly; so does a write of the event.
        written = encode_envelope(
            Envelope(
                type=event.type,
                run_id=event.run_id,
                timestamp=datetime.now(UTC),
                payload=event.payload,
                source=event.source,
            )
        )
        assert b'"payload":' + raw in written, (raw, written)
