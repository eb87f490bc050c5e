"""``write_raw_entry``: put bytes of your choosing into a stream, on any backend."""

from __future__ import annotations

from .._exceptions import ConfigurationError
from .._runtime import RuntimeStreams
from .._streams import validate_stream_id
from ..backend import Backend, Entry

__all__ = ["write_raw_entry"]


async def write_raw_entry(
    target: RuntimeStreams | Backend,
    stream_id: str,
    payload: bytes | str,
    *,
    name: str = "raw",
    topic: str | None = None,
) -> str:
    """Append one entry whose payload is ``payload`` as it is (not an envelope: invalid JSON,
    a JSON array, an envelope of another shape, …) and whose event name is ``name``; return
    its entry id. Goes through the backend's own ``append``, so it works on every backend:
    a poison test then sees what a hostile producer's entry does to a subscription.

    :raises ConfigurationError: a bad stream id, or a payload that is neither bytes nor text.
    """
    backend = target.backend if isinstance(target, RuntimeStreams) else target
    validate_stream_id(stream_id)
    if isinstance(payload, str):
        payload = payload.encode()
    elif not isinstance(payload, bytes | bytearray | memoryview):
        raise ConfigurationError(
            f"write_raw_entry() payload must be bytes or str, got {type(payload).__name__}"
        )
    (entry_id,) = await backend.append([Entry(stream_id, name, bytes(payload), topic)])
    return entry_id
