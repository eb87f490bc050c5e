"""The errors backends raise for the core to handle, defined with every other error in
:mod:`streamsink._exceptions` (one module, one root) and named here for backend authors."""

from __future__ import annotations

from .._exceptions import (
    BackendClosedError,
    ClosedError,
    GroupLostError,
    StreamDestroyedError,
)

__all__ = ["BackendClosedError", "ClosedError", "GroupLostError", "StreamDestroyedError"]
