"""URL parsing and validation of the Redis backend options."""

from __future__ import annotations

import attrs
import pytest

from streamsink import ConfigurationError
from streamsink.backend import BackendURL
from streamsink_redis import RedisOptions
from streamsink_redis._options import ConnectionTarget, accepted_keys, parse_url


def parse(url: str) -> tuple[RedisOptions, ConnectionTarget]:
    return parse_url(BackendURL.parse(url))


def test_defaults_follow_pulse() -> None:
    """A bare redis:// URL gets pulse's layout and timing: prefix, MAXLEN ~1000, 5 s block."""
    options, target = parse("redis://")
    assert options == RedisOptions()
    assert (options.maxlen, options.key_prefix, options.block_ms) == (1000, "pulse:stream:", 60_000)
    assert (options.count, options.claim_interval_ms, options.db) == (100, 500, 0)
    assert options.claim_interval == 0.5
    assert (target.kind, target.host, target.port, target.ssl) == ("tcp", "localhost", 6379, False)


def test_every_option_is_parsed() -> None:
    """Each query option, the db path and the credentials reach the options and the target."""
    options, target = parse(
        "redis://alice:s3cret@cache.example:6380/3?maxlen=0&key_prefix=app%3Astream%3A"
        "&block_ms=250&count=7&claim_interval_ms=50&socket_timeout=none"
        "&socket_connect_timeout=1.5&health_check_interval=30&max_connections=9&retries=0"
        "&client_name=worker-1"
    )
    assert options == RedisOptions(
        maxlen=0,
        key_prefix="app:stream:",
        block_ms=250,
        count=7,
        claim_interval_ms=50,
        db=3,
        socket_timeout=None,
        socket_connect_timeout=1.5,
        health_check_interval=30,
        max_connections=9,
        retries=0,
        client_name="worker-1",
    )
    assert (target.host, target.port, target.username, target.password) == (
        "cache.example",
        6380,
        "alice",
        "s3cret",
    )


def test_unix_socket_url_takes_db_from_query() -> None:
    """unix:///path/to/sock?db=2 connects to that socket and database."""
    options, target = parse("unix://:pw@/var/run/redis.sock?db=2")
    assert (target.kind, target.path, target.password, options.db) == (
        "unix",
        "/var/run/redis.sock",
        "pw",
        2,
    )


def test_rediss_accepts_ssl_options() -> None:
    """rediss:// turns TLS on and accepts the ssl_* options."""
    options, target = parse(
        "rediss://h?ssl_cert_reqs=none&ssl_ca_certs=/ca.pem&ssl_certfile=/c.pem"
        "&ssl_keyfile=/k.pem&ssl_check_hostname=false&ssl_ca_path=/cas"
    )
    assert target.ssl
    assert (options.ssl_cert_reqs, options.ssl_check_hostname) == ("none", False)
    assert (
        options.ssl_ca_certs,
        options.ssl_certfile,
        options.ssl_keyfile,
        options.ssl_ca_path,
    ) == (
        "/ca.pem",
        "/c.pem",
        "/k.pem",
        "/cas",
    )


@pytest.mark.parametrize("scheme", ["redis://h", "rediss://h", "unix:///s.sock", "fakeredis://"])
def test_unknown_key_lists_accepted_keys(scheme: str) -> None:
    """An unknown option is refused with every accepted key named."""
    with pytest.raises(ConfigurationError, match=r"unknown .* 'maxlength'") as info:
        parse(f"{scheme}?maxlength=5")
    for key in accepted_keys(BackendURL.parse(scheme).scheme):
        assert key in str(info.value)


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("maxlen=-1", "maxlen=-1 is invalid: expected an integer >= 0"),
        ("maxlen=lots", "maxlen='lots' is invalid: expected an integer"),
        ("block_ms=0", "block_ms=0 is invalid: expected an integer >= 1"),
        ("count=0", "count=0 is invalid: expected an integer >= 1"),
        ("claim_interval_ms=1.5", "claim_interval_ms='1.5' is invalid: expected an integer"),
        ("socket_timeout=0", "socket_timeout=0.0 is invalid: expected a number of seconds > 0"),
        ("socket_timeout=soon", "socket_timeout='soon' is invalid: expected a number of seconds"),
        ("socket_connect_timeout=inf", "socket_connect_timeout=inf is invalid: expected a number"),
        ("max_connections=0", "max_connections=0 is invalid: expected an integer >= 1"),
        ("retries=-2", "retries=-2 is invalid: expected an integer >= 0"),
        (
            "client_name=two%20words",
            "client_name='two words' is invalid: expected a non-empty name",
        ),
        ("db=x", "db='x' is invalid: expected an integer"),
        (
            "health_check_interval=-1",
            "health_check_interval=-1 is invalid: expected an integer >= 0",
        ),
    ],
)
def test_bad_values_name_option_value_and_expectation(query: str, fragment: str) -> None:
    """A bad value is refused with the option, the value and what was expected."""
    with pytest.raises(
        ConfigurationError, match=r"^RedisOptions\.\w+=.* is invalid: expected"
    ) as info:
        parse(f"redis://h?{query}")
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("ssl_cert_reqs=maybe", "ssl_cert_reqs='maybe' is invalid: expected one of"),
        (
            "ssl_check_hostname=perhaps",
            "ssl_check_hostname='perhaps' is invalid: expected a boolean",
        ),
    ],
)
def test_bad_ssl_values_are_refused(query: str, fragment: str) -> None:
    """ssl_* values are validated too."""
    with pytest.raises(
        ConfigurationError, match=r"^RedisOptions\.\w+=.* is invalid: expected"
    ) as info:
        parse(f"rediss://h?{query}")
    assert fragment in str(info.value)


def test_ssl_options_need_rediss() -> None:
    """ssl_* options on a plain redis:// URL are refused rather than silently ignored."""
    with pytest.raises(ConfigurationError, match="ssl_ca_certs"):
        parse("redis://h?ssl_ca_certs=/ca.pem")


def test_fakeredis_accepts_only_stream_options() -> None:
    """fakeredis:// takes the stream options (names are case-insensitive) and refuses connection
    ones."""
    options, target = parse("fakeredis://MyBus?maxlen=5&count=3")
    assert (target.kind, target.fake_name, options.maxlen, options.count) == ("fake", "mybus", 5, 3)
    assert parse("fakeredis://")[1].fake_name == ""
    with pytest.raises(ConfigurationError, match="socket_timeout"):
        parse("fakeredis://x?socket_timeout=1")


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("redis://h/zero", "expected /<db number>"),
        ("redis://h/1?db=2", "give one"),
        ("unix://", "no socket path"),
        ("unix://host/redis.sock", "names a host"),
        ("fakeredis://u:p@x", "credentials or a port"),
        ("fakeredis://x/db", "has a path"),
        ("memory://", "serves redis://"),
        ("redis://h?maxlen=1&maxlen=2", "more than once"),
    ],
)
def test_malformed_locations_are_refused(url: str, fragment: str) -> None:
    """A URL whose location makes no sense for its scheme is refused with a reason."""
    with pytest.raises(ConfigurationError, match=fragment):
        parse(url)


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("caf%C3%A9", "'caf\u00e9'"),
        ("line%0Abreak", r"'line\nbreak'"),
        ("tab%09name", r"'tab\tname'"),
        ("esc%1B%5B2J", r"'esc\x1b[2J'"),
        ("del%7F", r"'del\x7f'"),
        ("nbsp%C2%A0x", r"'nbsp\xa0x'"),
        ("rtl%E2%80%AEx", r"'rtl\u202ex'"),
        ("two%20words", "'two words'"),
    ],
)
def test_client_name_must_be_printable_ascii(name: str, shown: str) -> None:
    """Redis takes client names of printable ASCII without spaces ('!' to '~'); anything else is
    refused when the URL is parsed, naming the option and the value escaped, instead of failing
    at connect."""
    with pytest.raises(ConfigurationError) as info:
        parse(f"redis://h?client_name={name}")
    message = str(info.value)
    assert f"RedisOptions.client_name={shown} is invalid" in message
    assert "printable ASCII" in message
    assert message.isprintable()


def test_client_name_takes_every_printable_ascii_character() -> None:
    """Every character from '!' to '~' is fine, in the URL (percent-encoded) and built directly."""
    name = "".join(chr(c) for c in range(0x21, 0x7F))
    assert RedisOptions(client_name=name).client_name == name
    assert parse("redis://h?client_name=w%40host%3A1%2F%25")[0].client_name == "w@host:1/%"


def test_same_db_in_path_and_query_is_fine() -> None:
    """Naming the same db twice is not a conflict."""
    assert parse("redis://h/4?db=4")[0].db == 4


def test_options_validate_when_built_directly() -> None:
    """RedisOptions(...) validates like the URL parser and is immutable."""
    with pytest.raises(ConfigurationError, match="maxlen=-3"):
        RedisOptions(maxlen=-3)
    with pytest.raises(ConfigurationError, match="socket_timeout=True"):
        RedisOptions(socket_timeout=True)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        RedisOptions().maxlen = 1  # type: ignore[misc]
    assert RedisOptions(block_ms=1500).block == 1.5


def test_descriptions_hide_credentials() -> None:
    """Targets describe themselves without passwords, and do not show them in repr."""
    _, target = parse("redis://alice:s3cret@h:1/2")
    assert target.describe(2) == "redis://h:1/2"
    assert "s3cret" not in repr(target)
    assert parse("unix:///s.sock?db=1")[1].describe(1) == "unix:///s.sock?db=1"
    assert parse("fakeredis://bus")[1].describe(0) == "fakeredis://bus"
