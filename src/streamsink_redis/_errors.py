"""Translate redis-py exceptions into streamsink errors at the backend boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, TypeAlias

import redis.exceptions as rex

from streamsink import (
    AckError,
    BackendUnavailableError,
    ConfigurationError,
    PublishError,
    StreamsinkError,
)
from streamsink.backend import GroupLostError

__all__ = ["ClusterRetry", "Operation", "is_driver_error", "map_redis_errors", "translate"]

Operation: TypeAlias = Literal["append", "ack", "read", "admin"]
"""What was being done, which picks the error for failures that are not about availability:
``append`` -> PublishError, ``ack`` (ack, nack, touch) -> AckError, others -> StreamsinkError."""

_MAX_MESSAGE = 300


class ClusterRetry(rex.ResponseError):
    """A cluster node's error reply while a slot moves or fails over (``MOVED``, ``ASK``,
    ``TRYAGAIN``, ``CLUSTERDOWN``, ``READONLY``): the command did not run and goes again once the
    slot map is learned again. An error *reply*, so the connection is in sync and stays open."""


# Checked in order; the first matching class wins, so subclasses come before their bases.
_BY_CLASS: tuple[tuple[type[BaseException], type[StreamsinkError]], ...] = (
    (ClusterRetry, BackendUnavailableError),
    (rex.AuthenticationError, ConfigurationError),
    (rex.AuthorizationError, ConfigurationError),
    (rex.AuthenticationWrongNumberOfArgsError, ConfigurationError),
    (rex.NoPermissionError, ConfigurationError),
    (rex.DataError, ConfigurationError),
    (rex.ClusterCrossSlotError, ConfigurationError),
    (rex.AskError, ConfigurationError),  # MOVED/ASK: the URL names a cluster node
    (rex.ReadOnlyError, BackendUnavailableError),  # a replica, e.g. during failover
    (rex.ClusterDownError, BackendUnavailableError),
    (rex.TryAgainError, BackendUnavailableError),
    (rex.ConnectionError, BackendUnavailableError),
    (rex.TimeoutError, BackendUnavailableError),
    (rex.InvalidResponse, BackendUnavailableError),
    (rex.ChildDeadlockedError, BackendUnavailableError),
)

_LOST_GROUP_MARKERS = (
    "NOGROUP",  # no such key or consumer group
    "UNBLOCKED",  # Redis >= 7: a blocked XREADGROUP whose stream or group was deleted
    "requires the key to exist",  # XGROUP on a missing key; fakeredis says it for XREADGROUP
)


def _default(operation: Operation) -> type[StreamsinkError]:
    if operation == "append":
        return PublishError
    if operation == "ack":
        return AckError
    return StreamsinkError


def is_driver_error(exc: BaseException) -> bool:
    """True for exceptions redis-py (or fakeredis) raises, including the few that do not derive
    from ``RedisError`` (cluster and fork errors)."""
    if isinstance(exc, rex.RedisError):
        return True
    return any(
        cls.__module__.partition(".")[0] in ("redis", "fakeredis") for cls in type(exc).__mro__
    )


def _message(exc: BaseException, operation: Operation, where: str) -> str:
    text = str(exc) or type(exc).__name__
    if len(text) > _MAX_MESSAGE:
        text = text[:_MAX_MESSAGE] + "..."
    return f"redis {operation} failed on {where}: {text}"


def translate(exc: BaseException, operation: Operation, where: str = "redis") -> StreamsinkError:
    """The streamsink error for a driver (or socket) exception; the caller raises it ``from exc``."""
    message = _message(exc, operation, where)
    if isinstance(exc, rex.ResponseError):
        text = str(exc)
        if isinstance(exc, rex.OutOfMemoryError) or "used memory > 'maxmemory'" in text:
            # Writes are refused until memory is freed (maxmemory with noeviction): retryable.
            return BackendUnavailableError(
                f"Redis is out of memory and refuses writes (maxmemory reached): {message}"
            )
        if "DB index is out of range" in text:
            return ConfigurationError(
                f"{message} (the URL's db / db= option names a database this server does not "
                "have; its 'databases' setting bounds it)"
            )
        if any(marker in text for marker in _LOST_GROUP_MARKERS):
            return GroupLostError(message)
        if "WRONGTYPE" in text:
            return ConfigurationError(
                f"{message} (a key under the stream key prefix holds another type)"
            )
    for driver_class, error_class in _BY_CLASS:
        if isinstance(exc, driver_class):
            return error_class(message)
    if isinstance(exc, OSError):  # socket errors redis-py did not wrap, TimeoutError included
        return BackendUnavailableError(message)
    return _default(operation)(message)


@contextmanager
def map_redis_errors(operation: Operation, where: str = "redis") -> Iterator[None]:
    """Re-raise driver and socket exceptions as streamsink errors (``raise ... from exc``).

    Other exceptions (cancellation, programming errors) pass through untouched.
    """
    try:
        yield
    except StreamsinkError:
        raise
    except Exception as exc:
        if is_driver_error(exc) or isinstance(exc, OSError):
            raise translate(exc, operation, where) from exc
        raise
