"""streamsink's in-process backend: ``memory://``.

An in-memory broker with the semantics of Redis Streams consumer groups (ids ``<ms>-<seq>``,
approximate trimming, pending entries with delivery counts and idle times, claims), usable
under asyncio and trio. It is the reference backend and the test double: a unit suite on
``memory://`` sees what production on Redis would do.

::

    backend = await open_memory_backend("memory://")          # process-wide broker
    backend = MemoryBackend(MemoryBroker(clock=fake_clock))   # private broker, fake clock
"""

from ._backend import MemoryBackend
from ._broker import BrokerStatistics, MemoryBroker, PendingEntry
from ._handles import MemoryGroupConsumer, MemoryStreamReader
from ._options import MemoryOptions
from ._plugin import get_broker, open_memory_backend, reset_brokers

__all__ = [
    # backend
    "MemoryBackend",
    "MemoryOptions",
    "open_memory_backend",
    # broker
    "MemoryBroker",
    "BrokerStatistics",
    "PendingEntry",
    "get_broker",
    "reset_brokers",
    # handles
    "MemoryGroupConsumer",
    "MemoryStreamReader",
]
