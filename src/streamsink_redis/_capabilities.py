"""What the Redis backend declares it can do, on one server, on fakeredis and on a cluster."""

from __future__ import annotations

import attrs

from streamsink.backend import Capabilities

__all__ = ["CLUSTER_CAPABILITIES", "FAKEREDIS_CAPABILITIES", "REDIS_CAPABILITIES"]

REDIS_CAPABILITIES = Capabilities(
    destroy_ends_subscriptions=False,
    trio=False,
    persistent=True,
    reports_gaps=True,
    claims=True,
    own_pending=True,
    term=False,
    pending_summary=True,
    entry_times=True,
    stream_info=True,
    operations=True,
    shared_reads=True,
    max_age=True,
    idle_ttl=True,
)
"""A real server. ``destroy_ends_subscriptions`` is False: a destroy done by another process
cannot be told apart from FLUSHALL (both look like a lost group); a destroy through the same
backend object does end its consumers and readers (StreamDestroyedError). The core claims idle
entries (XAUTOCLAIM, or pulse-aware claims) when an XPENDING summary says some can be idle;
consumers own their pending entries by name (the PEL); an id's time is its ``<ms>`` part; there
is no native terminate (a dead letter is XACKed); fan-out readers share reads (multi-stream
``XREAD`` on ``shared_read_connections`` connections); operators list and trim (``operations``);
``max_age`` and ``idle_ttl`` bound streams by age (``XTRIM MINID ~``, on the server's clock) and
idleness (``PEXPIRE``).
A backend's own ``capabilities`` add its ``claim_interval`` (``claim_interval_ms``)."""

FAKEREDIS_CAPABILITIES = attrs.evolve(REDIS_CAPABILITIES, persistent=False)
"""fakeredis: in-process, so nothing outlives the process."""

CLUSTER_CAPABILITIES = attrs.evolve(REDIS_CAPABILITIES, shared_reads=False)
"""Redis Cluster: one ``XREAD`` cannot span slots (``CROSSSLOT``), so fan-out readers read alone;
operator commands go to each stream's master (listing scans every master)."""
