"""The ``memory://`` scheme: brokers by URL, options validation and plugin registration."""

from __future__ import annotations

import pytest

from streamsink._exceptions import ConfigurationError
from streamsink.backend import BackendFactory, BackendURL, Capabilities, Entry, StartPosition
from streamsink_memory import (
    MemoryBackend,
    MemoryOptions,
    get_broker,
    open_memory_backend,
    reset_brokers,
)
from streamsink_memory._plugin import streamsink_add_backends

from .helpers import payloads


@pytest.mark.anyio
async def test_memory_urls_share_the_default_broker() -> None:
    """Two backends opened on ``memory://`` see the same streams."""
    writer = await open_memory_backend("memory://")
    reader_backend = await open_memory_backend(BackendURL.parse("memory://"))
    assert writer.broker is reader_backend.broker is get_broker()
    reader = await reader_backend.open_reader("s", StartPosition.oldest())
    await writer.append([Entry("s", "n", b"x")])
    assert payloads(await reader.read(10, 0)) == [b"x"]


@pytest.mark.anyio
async def test_named_brokers_are_separate_from_the_default() -> None:
    """``memory://name`` is its own broker, shared by every URL naming it (case-insensitive)."""
    default = await open_memory_backend("memory://")
    named = await open_memory_backend("memory://tenant")
    again = await open_memory_backend("memory://Tenant")
    other = await open_memory_backend("memory://other")
    assert named.broker is again.broker is get_broker("tenant")
    assert len({id(b.broker) for b in (default, named, other)}) == 3
    assert named.description == "memory://tenant"
    assert default.description == "memory://"


@pytest.mark.anyio
async def test_reset_brokers_starts_afresh() -> None:
    """After ``reset_brokers`` the same URL opens a new, empty broker."""
    before = await open_memory_backend("memory://x")
    await before.append([Entry("s", "n", b"")])
    reset_brokers()
    after = await open_memory_backend("memory://x")
    assert after.broker is not before.broker
    assert after.broker.statistics().streams == 0


@pytest.mark.anyio
async def test_url_options_configure_the_backend() -> None:
    """``?maxlen=N`` sets the trimming length (default 1000), ``?yield_every=N`` how often
    appends yield (default 16)."""
    assert (await open_memory_backend("memory://")).options == MemoryOptions(
        maxlen=1000, yield_every=16
    )
    assert (await open_memory_backend("memory://?yield_every=1")).options.yield_every == 1
    backend = await open_memory_backend("memory://?maxlen=2")
    assert backend.options.maxlen == 2
    await backend.append([Entry("s", "n", str(i).encode()) for i in range(5)])
    assert len(backend.broker.entry_ids("s")) == 2
    assert (await open_memory_backend("memory:///?maxlen=0")).options.maxlen == 0


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("memory://host:1234", "a port"),
        ("memory://user:secret@host", "credentials"),
        ("memory://host/path", "a path"),
        ("redis://localhost", "not a memory:// URL"),
        ("memory://?maxlen=10&foo=1&bar=2", r"'bar', 'foo'; accepted: maxlen"),
        ("memory://?maxlen=ten", r"maxlen='ten'.*integer >= 0"),
        ("memory://?maxlen=-1", r"maxlen=-1.*integer >= 0"),
        ("memory://?maxlen=", r"maxlen=''.*integer >= 0"),
        ("memory://?maxlen=1&maxlen=2", "more than once"),
        ("memory://?yield_every=0", r"yield_every=0.*integer >= 1"),
        ("memory://?yield_every=often", r"yield_every='often'.*integer >= 1"),
    ],
)
async def test_bad_urls_are_configuration_errors(url: str, match: str) -> None:
    """Paths, ports, credentials, unknown keys and bad values are refused with a clear message."""
    with pytest.raises(ConfigurationError, match=match) as info:
        await open_memory_backend(url)
    assert "secret" not in str(info.value)


@pytest.mark.parametrize("value", [-1, True, 1.0, "5"])
def test_options_refuse_bad_values(value: object) -> None:
    """``MemoryOptions`` validates ``maxlen`` when built directly too."""
    with pytest.raises(ConfigurationError, match="maxlen"):
        MemoryOptions(maxlen=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, -3, False, 2.0, "16"])
def test_options_refuse_bad_yield_every(value: object) -> None:
    """``yield_every`` must be a positive integer."""
    with pytest.raises(ConfigurationError, match=r"yield_every=.*expected an integer >= 1"):
        MemoryOptions(yield_every=value)  # type: ignore[arg-type]


def test_options_from_query() -> None:
    """``from_query`` parses text values."""
    assert MemoryOptions.from_query({"maxlen": " 42 "}) == MemoryOptions(maxlen=42)
    assert MemoryOptions.from_query({"yield_every": "3", "maxlen": "0"}) == MemoryOptions(
        maxlen=0, yield_every=3
    )
    assert MemoryOptions.from_query({}) == MemoryOptions()


def test_the_hook_registers_the_memory_scheme() -> None:
    """The plugin's hook adds ``memory`` with the async factory and a description."""
    added: list[tuple[str, BackendFactory, str]] = []

    class Registry:
        def add(self, scheme: str, factory: BackendFactory, *, description: str = "") -> None:
            added.append((scheme, factory, description))

    streamsink_add_backends(Registry())
    assert [(scheme, factory) for scheme, factory, _ in added] == [("memory", open_memory_backend)]
    assert added[0][2]


def test_capabilities_are_all_but_persistence() -> None:
    """The memory backend can do everything except outlive the process (and it has no native
    terminate: a dead letter's entry is acked); it suggests no claim interval of its own."""
    assert MemoryBackend().capabilities == Capabilities(
        consumer_groups=True,
        fan_out=True,
        redelivery=True,
        trim=True,
        destroy_ends_subscriptions=True,
        trio=True,
        persistent=False,
        reports_gaps=True,
        claims=True,
        own_pending=True,
        term=False,
        pending_summary=True,
        entry_times=True,
        stream_info=True,
        operations=True,
        shared_reads=True,
        claim_interval=None,
    )


def test_a_backend_without_a_broker_gets_a_private_one() -> None:
    """``MemoryBackend()`` does not share the process-wide broker."""
    assert MemoryBackend().broker is not MemoryBackend().broker
    assert MemoryBackend().broker is not get_broker()
