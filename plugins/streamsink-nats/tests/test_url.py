"""nats:// URLs: the scheme is found through the entry point, options are validated, and no
message shows a credential."""

from __future__ import annotations

import pytest
import streamsink
from streamsink import BackendUnavailableError, ConfigurationError, StreamEvent

from streamsink_nats import NatsBackend, NatsOptions, decode_name, encode_name

pytestmark = pytest.mark.anyio


async def test_the_scheme_comes_from_the_entry_point(nats_url: str) -> None:
    """streamsink.connect finds nats:// with no registration by hand."""
    async with streamsink.connect(nats_url + "?max_msgs=10") as streams:
        sent = await streams.sink.send(StreamEvent("tool_start", "run-1", "url-1"))
        assert sent.entry_id == "1"
        assert streams.backend.description == nats_url
        await streams.backend.destroy(sent.stream_id)


async def test_options_reach_the_server(nats_url: str) -> None:
    """max_msgs trims each stream; entry ids are the stream sequences, increasing."""
    backend = await NatsBackend.connect(nats_url + "?max_msgs=3&stream_prefix=T_")
    try:
        from streamsink.backend import Entry, StartPosition

        ids = await backend.append([Entry("s/1", "n", b"{}") for _ in range(5)])
        assert ids == ["1", "2", "3", "4", "5"]
        info = await backend.js.stream_info(backend.stream_name("s/1"))
        assert info.config.name.startswith("T_")
        assert info.state.messages == 3
        reader = await backend.open_reader("s/1", StartPosition.oldest())
        assert [r.entry_id for r in await reader.read(10, 0)] == ["3", "4", "5"]
        await reader.aclose()
        await backend.destroy("s/1")
    finally:
        await backend.aclose()


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("max_msgs=-1", "NatsOptions.max_msgs=-1 is invalid: expected an integer >= 0"),
        ("max_msgs=lots", "NatsOptions.max_msgs='lots' is invalid: expected an integer >= 0"),
        ("replicas=7", "NatsOptions.replicas=7 is invalid: expected an integer from 1 to 5"),
        ("storage=disk", "NatsOptions.storage='disk' is invalid: expected 'file' or 'memory'"),
        ("stream_prefix=a.b", "NatsOptions.stream_prefix='a.b' is invalid"),
        ("subject_prefix=a.*", "NatsOptions.subject_prefix='a.*' is invalid"),
        (
            "connect_timeout=0",
            "NatsOptions.connect_timeout=0.0 is invalid: expected a number of seconds > 0",
        ),
        ("maxlen=3", "unknown nats:// URL option(s) 'maxlen'; accepted: stream_prefix,"),
    ],
)
async def test_bad_options_are_named(query: str, words: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        await NatsBackend.connect(f"nats://user:hunter2@127.0.0.1:1?{query}")
    assert words in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_defaults() -> None:
    options = NatsOptions.from_query({})
    assert (options.max_msgs, options.replicas, options.storage) == (1000, 1, "file")


async def test_a_path_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="must not have a path"):
        await NatsBackend.connect("nats://127.0.0.1:4222/0")


@pytest.mark.slow  # the connect timeout runs out
async def test_an_unreachable_server_hides_the_password() -> None:
    """The error names the host and port, never the credentials."""
    with pytest.raises(BackendUnavailableError) as caught:
        await NatsBackend.connect("nats://alice:s3cret@127.0.0.1:1?connect_timeout=0.5")
    text = str(caught.value) + repr(caught.value)
    assert "127.0.0.1:1" in text
    assert "s3cret" not in text
    assert "alice" not in text


@pytest.mark.parametrize(
    "text", ["session/abc", "a.b*c>d e", "_x_41", "ünïcødé/😀", "", "a:b:dlq", "A-Z_09"]
)
def test_names_round_trip(text: str) -> None:
    encoded = encode_name(text)
    assert all(c.isascii() and (c.isalnum() or c in "-_") for c in encoded)
    assert decode_name(encoded) == text


def test_decode_refuses_foreign_names() -> None:
    with pytest.raises(ConfigurationError):
        decode_name("a.b")
