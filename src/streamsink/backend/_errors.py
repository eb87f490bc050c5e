"""The errors only backends raise (the core handles them; applications rarely see them)."""

from __future__ import annotations

from .._exceptions import BackendUnavailableError

__all__ = ["GroupLostError", "StreamDestroyedError"]


class GroupLostError(BackendUnavailableError):
    """The consumer group (or its stream) vanished under a consumer, e.g. Redis FLUSHALL.

    The core answers by re-creating the group with :meth:`GroupConsumer.ensure_group`, with backoff.
    """


class StreamDestroyedError(BackendUnavailableError):
    """The stream was destroyed through this backend; subscriptions on it end cleanly."""
