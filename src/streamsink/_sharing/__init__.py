"""Shared reads for fan-out subscriptions: one hub per backend in a process serves every fan-out
reader through a few multi-stream reads of the backend's
:class:`~streamsink.backend.SharedReads` (on backends that declare
``Capabilities.shared_reads``), each reader with its own cursor and bounded buffer.

- :mod:`._registry`: the hub of a backend, and :func:`open_shared_reader`;
- :mod:`._hub`: channels and lanes, joining and leaving, the shared read and its hand-out;
- :mod:`._lanes`: the bookkeeping of channels (readers at one cursor) and lanes (one read each);
- :mod:`._reader`: the :class:`~streamsink.backend.StreamReader` a subscription reads from;
- :mod:`._buffer`: a reader's bounded buffer.
"""

from ._buffer import SharedRecords
from ._hub import Hub
from ._reader import SHARED_MAX_BLOCK, SharedReader
from ._registry import hub_of, open_shared_reader, shares_reads

__all__ = [
    "SHARED_MAX_BLOCK",
    "Hub",
    "SharedReader",
    "SharedRecords",
    "hub_of",
    "open_shared_reader",
    "shares_reads",
]
