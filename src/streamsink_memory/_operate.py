"""The operations extension of the memory backend (:class:`streamsink.backend.OperableBackend`):
groups, consumers and pending entries as XINFO and XPENDING show them, deleting idle consumers,
exact trims. Plain functions on the broker's state; the backend checks names and its own state."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING

from streamsink.backend import ConsumerInfo, GroupInfo, PendingInfo, TrimBound

from ._group import Group
from ._keys import format_key, parse_key

if TYPE_CHECKING:
    from ._broker import MemoryBroker

__all__ = ["delete_idle_consumer", "list_consumers", "list_groups", "list_pending", "trim_stream"]


def list_groups(broker: MemoryBroker, stream_id: str) -> list[GroupInfo] | None:
    stream = broker._streams.get(stream_id)
    if stream is None:
        return None
    now = broker.clock()
    infos = []
    for name in sorted(stream.groups):
        group = stream.groups[name]
        seen = [consumer.seen for consumer in group.consumers.values()]
        infos.append(
            GroupInfo(
                name=name,
                consumers=len(group.consumers),
                pending=len(group.pel),
                last_delivered_id=format_key(group.last_key) if group.last_key else None,
                lag=len(stream.keys) - bisect_right(stream.keys, group.last_key, stream.head),
                idle=now - max(seen) if seen else None,
            )
        )
    return infos


def _group(broker: MemoryBroker, stream_id: str, group: str) -> Group | None:
    stream = broker._streams.get(stream_id)
    return None if stream is None else stream.groups.get(group)


def list_consumers(broker: MemoryBroker, stream_id: str, group: str) -> list[ConsumerInfo] | None:
    found = _group(broker, stream_id, group)
    if found is None:
        return None
    now = broker.clock()
    return [
        ConsumerInfo(name=name, pending=len(consumer.pending), idle=now - consumer.seen)
        for name, consumer in sorted(found.consumers.items())
    ]


def list_pending(
    broker: MemoryBroker,
    stream_id: str,
    group: str,
    after: str | None,
    count: int,
    consumer: str | None,
) -> list[PendingInfo] | None:
    """:raises ConfigurationError: ``after`` is not a ``<ms>-<seq>`` id (checked first)."""
    after_key = 0 if after is None else parse_key(after)
    found = _group(broker, stream_id, group)
    if found is None:
        return None
    now = broker.clock()
    order = found.order  # id order; entries that left the PEL have no owner
    rows: list[PendingInfo] = []
    for index in range(bisect_right(order, after_key, key=lambda p: p.key), len(order)):
        pending = order[index]
        owner = pending.owner
        if owner is None or (consumer is not None and owner.name != consumer):
            continue
        rows.append(
            PendingInfo(
                entry_id=pending.entry_id,
                consumer=owner.name,
                idle=now - pending.time,
                deliveries=pending.count,
            )
        )
        if len(rows) == count:
            break
    return rows


def delete_idle_consumer(
    broker: MemoryBroker, stream_id: str, group: str, consumer: str, min_idle: float
) -> bool:
    found = _group(broker, stream_id, group)
    member = None if found is None else found.consumers.get(consumer)
    if found is None or member is None or member.pending:
        return False
    if broker.clock() - member.seen < min_idle:
        return False
    del found.consumers[consumer]
    return True


def trim_stream(broker: MemoryBroker, stream_id: str, bound: TrimBound) -> int:
    """:raises ConfigurationError: an id in ``bound`` that is not ``<ms>-<seq>`` (checked first)."""
    key = 0 if bound.entry_id is None else parse_key(bound.entry_id)
    stream = broker._streams.get(stream_id)
    if stream is None:
        return 0
    keys = stream.keys
    if bound.kind == "maxlen":
        head = max(stream.head, len(keys) - (bound.count or 0))
    elif bound.kind == "minid":
        head = bisect_left(keys, key, stream.head)
    else:
        head = bisect_right(keys, key, stream.head)
    removed = head - stream.head
    if removed > 0:
        stream.trim(len(keys) - head)  # keeps the newest; records the newest key trimmed away
    return removed
