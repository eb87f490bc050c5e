"""Which hub serves a backend: one per backend object, made by the first shared reader and
dropped with the last."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import cast

from ..backend import Backend, SharedReadBackend, StartPosition, StreamReader
from ._hub import Hub

__all__ = ["hub_of", "open_shared_reader", "shares_reads"]

_hubs: weakref.WeakKeyDictionary[Backend, Hub] = weakref.WeakKeyDictionary()


def shares_reads(backend: Backend) -> bool:
    """Whether fan-out readers of ``backend`` can share reads: it declares
    ``Capabilities.shared_reads``, its class defines ``open_shared_reads`` (a wrapper forwarding
    attributes, as the kit's ``FaultyBackend``, declares the flag of what it wraps but would
    let shared reads bypass it: its readers stay its own), and it can be weakly referenced."""
    if not backend.capabilities.shared_reads:
        return False
    if not callable(getattr(type(backend), "open_shared_reads", None)):
        return False
    try:
        weakref.ref(backend)
    except TypeError:
        return False
    return True


def hub_of(backend: Backend) -> Hub | None:
    """The hub serving ``backend`` now, if any (for tests and statistics)."""
    return _hubs.get(backend)


async def open_shared_reader(
    backend: Backend, stream_id: str, start: StartPosition, *, bound: int, bound_bytes: int
) -> StreamReader:
    """A fan-out reader of ``stream_id`` from ``start`` that reads with every other shared reader
    of ``backend`` in this process, buffering up to ``bound`` entries and ``bound_bytes`` bytes
    of payload before it is detached to catch up on its own. Call only where
    :func:`shares_reads` is True.

    :raises ConfigurationError: an invalid stream id or start.
    :raises BackendClosedError: the backend is closed.
    :raises BackendUnavailableError: the backend cannot be reached.
    """
    hub = _hubs.get(backend)
    if hub is None or hub.closed:
        shared = await cast(SharedReadBackend, backend).open_shared_reads()
        hub = _hubs.get(backend)  # another reader may have made one meanwhile
        if hub is None or hub.closed:
            hub = _hubs[backend] = Hub(shared, _forget(backend))
        else:
            await shared.aclose()
    return await hub.join(stream_id, start, bound, bound_bytes)


def _forget(backend: Backend) -> Callable[[Hub], None]:
    ref = weakref.ref(backend)

    def forget(hub: Hub) -> None:
        owner = ref()
        if owner is not None and _hubs.get(owner) is hub:
            del _hubs[owner]

    return forget
