"""Appends on Redis Cluster: a batch split by the master serving each stream, and the ``WAIT``
of the ``wait_replicas`` option."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from streamsink import DurabilityError
from streamsink.backend import Entry

from ._handle import Context

__all__ = ["append_by_master", "wait_for_replicas"]


async def append_by_master(
    home: Context, entries: Sequence[Entry], key: Callable[[str], str], where: str
) -> list[str]:
    """XADD ``entries`` and return their ids in order: grouped by the master serving each
    stream (in order within each), each group through that master's appender (retry-safe as on
    one server); then, with ``wait_replicas``, ``WAIT`` on each master that took entries.

    Every stream id is checked before anything is written. Driver errors are raised as they
    come (the caller translates them); a group that fails leaves the groups before it written.

    :raises ConfigurationError: an invalid stream id or entry; nothing was written.
    :raises DurabilityError: every entry is written, but fewer replicas than asked acknowledged.
    """
    by_node: dict[int, tuple[Context, list[int]]] = {}
    for index, entry in enumerate(entries):
        ctx = home.on(key(entry.stream_id))
        by_node.setdefault(id(ctx), (ctx, []))[1].append(index)
    ids = [""] * len(entries)
    options = home.options
    for ctx, indexes in by_node.values():
        written = await ctx.commands.appender.append(
            [entries[index] for index in indexes], key, options.maxlen
        )
        for index, entry_id in zip(indexes, written, strict=True):
            ids[index] = entry_id
    wanted = options.wait_replicas
    if wanted:
        for ctx, _ in by_node.values():
            acked = await wait_for_replicas(ctx, wanted, options.wait_timeout)
            if acked < wanted:
                raise DurabilityError(
                    f"redis append on {where}: {acked} of {wanted} replicas acknowledged within "
                    f"{options.wait_timeout:g} s (wait_replicas); the entries are written on "
                    "their master and may be lost if it fails before a replica has them; "
                    "sending them again would write them twice",
                    acked=acked,
                    wanted=wanted,
                    entry_ids=ids,
                )
    return ids


async def wait_for_replicas(ctx: Context, wanted: int, wait_s: float) -> int:
    """``WAIT wanted <wait_s in ms>`` on the command connection of ``ctx`` (the one the appends
    went through, whose writes WAIT counts); how many replicas acknowledged. The call's deadline
    is the socket timeout plus the wait."""
    wait_ms = max(1, math.ceil(wait_s * 1000))
    (acked,) = await ctx.commands.run([("WAIT", wanted, wait_ms)], wait=wait_ms / 1000)
    if isinstance(acked, BaseException):
        raise acked
    return int(acked)
