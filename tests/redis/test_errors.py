"""Translation of redis-py exceptions into streamsink errors."""

from __future__ import annotations

import asyncio

import pytest
import redis.exceptions as rex

from streamsink import (
    AckError,
    BackendUnavailableError,
    ConfigurationError,
    PublishError,
    StreamsinkError,
)
from streamsink.backend import GroupLostError
from streamsink_redis import RedisBackend
from streamsink_redis._errors import Operation, map_redis_errors, translate


def _instantiate(cls: type[BaseException]) -> BaseException:
    for args in (("1 127.0.0.1:7000",), ("boom",), ()):
        try:
            return cls(*args)
        except Exception:
            continue
    raise AssertionError(f"cannot build {cls!r}")


EXCEPTION_CLASSES = sorted(
    (obj for obj in vars(rex).values() if isinstance(obj, type) and issubclass(obj, BaseException)),
    key=lambda cls: cls.__name__,
)


@pytest.mark.parametrize("cls", EXCEPTION_CLASSES, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("operation", ["append", "ack", "read", "admin"])
def test_every_redis_exception_is_mapped(cls: type[BaseException], operation: Operation) -> None:
    """Every exception class in redis.exceptions leaves as a StreamsinkError, chained."""
    exc = _instantiate(cls)
    with pytest.raises(StreamsinkError) as info, map_redis_errors(operation, "redis://h:1/0"):
        raise exc
    assert info.value.__cause__ is exc
    assert "redis://h:1/0" in str(info.value)


def test_the_walk_found_the_classes_that_matter() -> None:
    """The walk above sees the driver's main classes, including non-RedisError ones."""
    names = {cls.__name__ for cls in EXCEPTION_CLASSES}
    assert {"RedisError", "ConnectionError", "ResponseError", "ClusterError"} <= names
    assert {"ChildDeadlockedError", "RedisClusterException"} <= names


@pytest.mark.parametrize(
    ("exc", "operation", "expected"),
    [
        (rex.ConnectionError("refused"), "append", BackendUnavailableError),
        (rex.TimeoutError("slow"), "read", BackendUnavailableError),
        (rex.BusyLoadingError("loading"), "read", BackendUnavailableError),
        (rex.MaxConnectionsError("full"), "read", BackendUnavailableError),
        (rex.ReadOnlyError("READONLY replica"), "append", BackendUnavailableError),
        (rex.InvalidResponse("garbage"), "read", BackendUnavailableError),
        (ConnectionResetError("reset"), "read", BackendUnavailableError),
        (TimeoutError(), "read", BackendUnavailableError),
        (rex.AuthenticationError("WRONGPASS"), "read", ConfigurationError),
        (rex.NoPermissionError("NOPERM"), "append", ConfigurationError),
        (rex.DataError("bad arg"), "append", ConfigurationError),
        (rex.ResponseError("WRONGTYPE Operation against a key"), "read", ConfigurationError),
        (
            rex.ResponseError("NOGROUP No such key 'k' or consumer group 'g'"),
            "read",
            GroupLostError,
        ),
        (rex.ResponseError("NOGROUP No such key"), "ack", GroupLostError),
        (rex.ResponseError("UNBLOCKED the stream key no longer exists"), "read", GroupLostError),
        (
            rex.ResponseError("The XGROUP subcommand requires the key to exist"),
            "read",
            GroupLostError,
        ),
        (
            rex.ResponseError("Command # 1 (XREADGROUP ...) of pipeline caused error: NOGROUP x"),
            "read",
            GroupLostError,
        ),
        (rex.ResponseError("ERR syntax error"), "append", PublishError),
        (rex.OutOfMemoryError("OOM"), "append", BackendUnavailableError),  # retry later
        (rex.ResponseError("ERR syntax error"), "ack", AckError),
        (rex.ResponseError("ERR syntax error"), "read", StreamsinkError),
    ],
)
def test_most_specific_error(
    exc: BaseException, operation: Operation, expected: type[StreamsinkError]
) -> None:
    """Each failure maps to the most specific streamsink error for the operation."""
    with pytest.raises(StreamsinkError) as info, map_redis_errors(operation):
        raise exc
    assert type(info.value) is expected


@pytest.mark.parametrize("exc", [ValueError("bug"), KeyError("k"), asyncio.CancelledError()])
def test_other_exceptions_pass_through(exc: BaseException) -> None:
    """Programming errors and cancellation are not disguised as backend errors."""
    with pytest.raises(type(exc)) as info, map_redis_errors("read"):
        raise exc
    assert info.value is exc


def test_streamsink_errors_pass_through() -> None:
    """An error that is already a streamsink error is not wrapped again."""
    original = GroupLostError("gone")
    with pytest.raises(GroupLostError) as info, map_redis_errors("read"):
        raise original
    assert info.value is original


def test_long_driver_messages_are_cut() -> None:
    """A huge driver message (a pipeline error quoting a payload) is truncated."""
    with pytest.raises(PublishError) as info, map_redis_errors("append"):
        raise rex.ResponseError("ERR " + "x" * 10_000)
    assert len(str(info.value)) < 500


@pytest.mark.anyio
async def test_a_database_the_server_does_not_have_is_a_configuration_error(
    redis_url: str,
) -> None:
    """``db=99999`` is refused by the server at connect: a ConfigurationError naming the db."""
    with pytest.raises(ConfigurationError, match=r"DB index is out of range.*db"):
        await RedisBackend.open(redis_url.rsplit("/", 1)[0] + "/99999")


def test_out_of_memory_is_retryable_and_says_so() -> None:
    """Redis refusing a write for lack of memory is BackendUnavailableError (retry later), and
    the message says it is out of memory."""
    refused = rex.OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")
    error = translate(refused, "append")
    assert isinstance(error, BackendUnavailableError)
    assert "out of memory" in str(error)
