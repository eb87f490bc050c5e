"""redis+cluster:// and rediss+cluster:// URLs: seeds, options, bad input, secrets."""

from __future__ import annotations

import pytest

from streamsink import (
    BackendUnavailableError,
    ConfigurationError,
    PublishError,
    open_backend,
)
from streamsink.backend import BackendURL
from streamsink_redis import RedisBackend, RedisOptions
from streamsink_redis._options import ConnectionTarget, accepted_keys, parse_url
from tests.support.redis_server import RedisServer


def parse(url: str) -> tuple[RedisOptions, ConnectionTarget]:
    return parse_url(BackendURL.parse(url))


def test_seeds_ports_and_defaults() -> None:
    options, target = parse("redis+cluster://h1:7000,h2,[::1]:7002")
    assert target.kind == "cluster"
    assert target.seeds == (("h1", 7000), ("h2", 6379), ("::1", 7002))
    assert not target.ssl
    assert target.describe(0) == "redis+cluster://h1:7000,h2:6379,[::1]:7002"
    _, many = parse("redis+cluster://a:1,b:2,c:3,d:4,e:5")
    assert many.describe(0) == "redis+cluster://a:1,b:2,c:3,+2 more"
    # A cluster never takes part in pulse's keep-alive (its keys lie in other slots).
    assert options.pulse_keepalive is False
    assert options.keepalive_on(fake=False) is False
    assert (options.wait_replicas, options.wait_timeout) == (0, 1.0)
    _, single = parse("rediss+cluster://only:7000")
    assert single.seeds == (("only", 7000),)
    assert single.ssl
    assert single.describe(0) == "rediss+cluster://only:7000"


def test_every_cluster_option_is_parsed() -> None:
    options, _ = parse(
        "redis+cluster://h1:1,h2:2?wait_replicas=2&wait_timeout=0.25&maxlen=5&count=7"
        "&socket_timeout=2&retries=3&client_name=bus&key_prefix=%7Bapp%7D:"
    )
    assert (options.wait_replicas, options.wait_timeout) == (2, 0.25)
    assert (options.maxlen, options.count, options.socket_timeout, options.retries) == (5, 7, 2, 3)
    assert (options.client_name, options.key_prefix) == ("bus", "{app}:")


def test_accepted_keys() -> None:
    plain = accepted_keys("redis+cluster")
    assert "db" not in plain  # a cluster has database 0 only
    assert {"wait_replicas", "wait_timeout", "maxlen", "socket_timeout"} <= set(plain)
    assert not any(key.startswith("ssl_") for key in plain)
    assert "ssl_ca_certs" in accepted_keys("rediss+cluster")
    assert "wait_replicas" not in accepted_keys("redis")


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("redis+cluster://h1:1,h2:2?db=1", "unknown"),
        ("redis+cluster://h1:1,h2:2/0", "database 0 only"),
        ("redis+cluster://h1:1,,h2:2", "empty host"),
        ("redis+cluster://h1:1,h2:port", "bad port"),
        ("redis+cluster://h1:1,h2:70000", "bad port"),
        ("redis+cluster://h1:1?ssl_ca_certs=/ca.pem", "ssl_ca_certs"),
        (
            "redis+cluster://h1:1?pulse_keepalive=true",
            "pulse_keepalive=True is invalid: expected false on Redis Cluster",
        ),
        ("redis+cluster://h1:1?wait_replicas=-1", "wait_replicas=-1 is invalid: expected an int"),
        ("redis+cluster://h1:1?wait_replicas=two", "wait_replicas='two' is invalid"),
        ("redis+cluster://h1:1?wait_timeout=0", "wait_timeout=0.0 is invalid: expected a number"),
        ("redis+cluster://h1:1?wait_timeout=none", "wait_timeout"),
        ("redis+cluster://h1:1?wait_timeout=7200", "from 0.001 to 3600"),
    ],
)
def test_bad_input_is_refused_with_a_reason(url: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse(url)
    assert fragment in str(info.value)


def test_unknown_key_lists_accepted_keys() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown .* 'wait_replica'") as info:
        parse("redis+cluster://h1:1?wait_replica=1")
    for key in accepted_keys("redis+cluster"):
        assert key in str(info.value)


def test_wait_options_need_a_cluster() -> None:
    with pytest.raises(ConfigurationError, match="wait_replicas"):
        parse("redis://h?wait_replicas=1")


def test_secrets_stay_hidden() -> None:
    url = BackendURL.parse("redis+cluster://alice:s3cret@h1:1,h2:2?maxlen=1")
    options, target = parse_url(url)
    assert (target.username, target.password) == ("alice", "s3cret")
    for shown in (str(url), repr(url), repr(target), target.describe(0), repr(options)):
        assert "s3cret" not in shown
        assert "alice" not in shown
    with pytest.raises(ConfigurationError) as info:
        BackendURL.parse("redis+cluster://alice:s3cret@h1:1,h2:x")
    assert "s3cret" not in str(info.value)


@pytest.mark.anyio
async def test_unreachable_seeds_are_unavailable() -> None:
    with pytest.raises(BackendUnavailableError, match=r"redis\+cluster://127\.0\.0\.1:1"):
        await open_backend("redis+cluster://127.0.0.1:1,127.0.0.1:2?socket_connect_timeout=0.5")


@pytest.mark.anyio
async def test_a_single_server_is_not_a_cluster(redis_process: RedisServer) -> None:
    with pytest.raises(ConfigurationError, match="not a cluster node"):
        await open_backend(f"redis+cluster://127.0.0.1:{redis_process.port}")


@pytest.mark.anyio
async def test_wrong_password_is_a_configuration_error(redis_cluster_url: str) -> None:
    bad = redis_cluster_url.replace("redis+cluster://", "redis+cluster://nobody:wrong@")
    with pytest.raises(ConfigurationError) as info:
        await open_backend(bad)
    assert "wrong" not in str(info.value)


def test_durability_error_is_a_publish_error() -> None:
    from streamsink import DurabilityError

    error = DurabilityError("x", acked=1, wanted=2, entry_ids=["1-0"])
    assert isinstance(error, PublishError)
    assert (error.acked, error.wanted, error.entry_ids) == (1, 2, ("1-0",))


def test_from_client_refuses_cluster_options() -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis()
    with pytest.raises(ConfigurationError, match="wait_replicas"):
        RedisBackend.from_client(client, options=RedisOptions(wait_replicas=1))
