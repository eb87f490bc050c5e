"""nats-py's exceptions turned into streamsink's, so that none leaves the backend."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import nats.errors
import nats.js.errors
from streamsink import BackendUnavailableError, StreamsinkError

__all__ = ["STREAM_NOT_FOUND", "CONSUMER_NOT_FOUND", "translated"]

STREAM_NOT_FOUND = 10059
CONSUMER_NOT_FOUND = 10014


@contextmanager
def translated(what: str, description: str) -> Iterator[None]:
    """Raise nats-py's errors of ``what`` as :class:`BackendUnavailableError` (connection,
    timeout, a JetStream API that is not answering) or :class:`StreamsinkError` (a refused
    request). ``description`` is the backend's password-free one."""
    try:
        yield
    except StreamsinkError:
        raise
    except (nats.js.errors.ServiceUnavailableError, nats.js.errors.NoStreamResponseError) as exc:
        raise BackendUnavailableError(
            f"{what} on {description}: JetStream unavailable ({exc})"
        ) from None
    except nats.js.errors.APIError as exc:
        raise StreamsinkError(
            f"{what} on {description} refused by JetStream: {exc.description} "
            f"(code {exc.code}, err_code {exc.err_code})"
        ) from None
    except (nats.errors.Error, OSError, TimeoutError) as exc:
        raise BackendUnavailableError(
            f"{what} on {description} failed: {type(exc).__name__} {exc}"
        ) from None
