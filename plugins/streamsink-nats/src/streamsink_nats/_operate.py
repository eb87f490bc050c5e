"""The operations extension (:class:`streamsink.backend.OperableBackend`) on JetStream.

What JetStream keeps and what it does not:

- **Streams** are the JetStream streams named with ``stream_prefix`` whose rest decodes as a
  stream id (others on the server are not ours and are left out).
- **Groups** are the durable consumers of a stream: ``pending`` is ``num_ack_pending`` (every
  member's, in every process), ``lag`` is ``num_pending``, ``last_delivered_id`` the stream
  sequence last delivered, ``idle`` from the consumer's own ``last_active`` time. Ephemeral
  consumers (fan-out readers) are not groups.
- **Consumers** (members): JetStream has no members, only the durable consumer and the pull
  requests made on it. So the members listed are the ones *this backend* has open on the group,
  with the deliveries each read and JetStream has not redelivered yet (within 90% of AckWait,
  as for ``nack``/``touch``). Members in other processes are not seen (a separate operator
  process, such as the ``streamsink`` command, sees none), though their deliveries count in the
  group's ``pending``.
- **Pending entries** are likewise this backend's members' deliveries: JetStream has no API
  listing a consumer's unacknowledged sequences. When the group has more pending entries
  (``num_ack_pending``) than this backend's members hold, listing them all raises
  ``StreamsinkError`` saying so, rather than return a list that looks complete; listing one
  ``consumer``'s returns what this backend's members of that name hold.
- **Deleting an idle member** takes it out of the listings until it reads again (as Redis
  re-creates a deleted consumer on its next read); it is done only while it holds no live
  delivery and was idle long enough, checked and done without a wait in between, so
  atomically. There is nothing on the server to delete: a member's deliveries are the group's.
- **Trims** are JetStream purges: ``maxlen(n)`` keeps ``n``; ``minid(id)`` purges below
  sequence ``id``, ``through(id)`` up to and including it; the server says how many went.
"""

from __future__ import annotations

import json
import math
from contextlib import suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
import nats.js.errors
from streamsink import ConfigurationError, StreamsinkError
from streamsink.backend import ConsumerInfo, GroupInfo, PendingInfo, TrimBound

from ._errors import STREAM_NOT_FOUND, translated
from ._group import NatsGroupConsumer
from ._handle import check_count
from ._names import MAX_NAME, decode, encode, encode_check

if TYPE_CHECKING:
    from ._backend import NatsBackend

__all__ = [
    "delete_idle_consumer",
    "list_consumers",
    "list_groups",
    "list_pending",
    "list_streams",
    "trim_stream",
]


async def _api(
    backend: NatsBackend, what: str, subject: str, body: dict[str, Any], *, missing: int = 0
) -> Any:
    """One JetStream API request; None when it answers the error ``missing`` (an err_code),
    any other error raised as a streamsink error."""
    with translated(what, backend.description):
        msg = await backend.nc.request(
            f"$JS.API.{subject}", json.dumps(body).encode(), timeout=backend.options.request_timeout
        )
        answer = json.loads(msg.data)
        error = answer.get("error")
        if error is not None:
            if missing and error.get("err_code") == missing:
                return None
            nats.js.errors.APIError.from_error(error)
    return answer


async def list_streams(backend: NatsBackend) -> list[str]:
    prefix = backend.options.stream_prefix
    found: list[str] = []
    offset = 0
    while True:
        answer = await _api(backend, "list_streams", "STREAM.NAMES", {"offset": offset})
        names = answer.get("streams") or []
        for name in names:
            rest = name[len(prefix) :]
            if name.startswith(prefix) and rest and encode_check(rest):
                # (escapes that are not UTF-8: made by something else, not ours)
                with suppress(UnicodeDecodeError):
                    found.append(decode(rest))
        offset += len(names)
        if not names or offset >= answer.get("total", 0):
            return sorted(found)


async def _durables(backend: NatsBackend, stream_id: str) -> list[Any] | None:
    """The durable consumers of the stream, None when it does not exist."""
    name = backend.stream_name(stream_id)
    consumers: list[Any] = []
    with translated("list_groups", backend.description):
        while True:
            try:
                page = await backend.js.consumers_info(name, offset=len(consumers) or None)
            except nats.js.errors.NotFoundError:
                return None
            consumers.extend(page)
            if len(page) < 256:  # the server's page size
                break
    return [c for c in consumers if c.config.durable_name and encode_check(c.name)]


def _members(backend: NatsBackend, stream_id: str, group: str) -> dict[str, list[Any]]:
    """This backend's open, listed members of the group, by consumer name."""
    members: dict[str, list[Any]] = {}
    for handle in backend.handles():
        if (
            isinstance(handle, NatsGroupConsumer)
            and handle.stream_id == stream_id
            and handle.group == group
            and handle.listed
        ):
            members.setdefault(handle.consumer, []).append(handle)
    return members


async def list_groups(backend: NatsBackend, stream_id: str) -> list[GroupInfo] | None:
    durables = await _durables(backend, stream_id)
    if durables is None:
        return None
    clock = anyio.current_time()
    infos = []
    for info in durables:
        group = decode(info.name)
        members = _members(backend, stream_id, group)
        delivered = info.delivered
        idle: float | None = None
        if delivered.last_active is not None:  # the server's clock against ours
            idle = max(0.0, (datetime.now(UTC) - delivered.last_active).total_seconds())
        elif members:
            idle = min(clock - h.last_read for hs in members.values() for h in hs)
        infos.append(
            GroupInfo(
                name=group,
                consumers=len(members),
                pending=info.num_ack_pending,
                last_delivered_id=str(delivered.stream_seq) if delivered.stream_seq else None,
                lag=info.num_pending,
                idle=idle,
            )
        )
    return sorted(infos, key=lambda g: g.name)


async def _group_info(backend: NatsBackend, stream_id: str, group: str) -> Any | None:
    """The durable consumer's info; None when it or its stream is missing."""
    name = backend.stream_name(stream_id)
    durable = encode(group)
    if len(durable) > MAX_NAME or not group:
        raise ConfigurationError(
            f"group name {group[:40]!r} is not a NATS group: expected 1 to {MAX_NAME} "
            "characters once encoded"
        )
    with translated("consumer info", backend.description):
        try:
            return await backend.js.consumer_info(name, durable)
        except nats.js.errors.NotFoundError:
            return None


async def _group_exists(backend: NatsBackend, stream_id: str, group: str) -> bool:
    return await _group_info(backend, stream_id, group) is not None


async def list_consumers(
    backend: NatsBackend, stream_id: str, group: str
) -> list[ConsumerInfo] | None:
    info = await _group_info(backend, stream_id, group)
    if info is None:
        return None
    now = anyio.current_time()
    rows = []
    for name, handles in sorted(_members(backend, stream_id, group).items()):
        held = sum(len(h.live_deliveries(now)) for h in handles)
        idle = min(now - h.last_read for h in handles)
        rows.append(ConsumerInfo(name=name, pending=held, idle=idle))
    return rows


async def list_pending(
    backend: NatsBackend,
    stream_id: str,
    group: str,
    after: str | None,
    count: int,
    consumer: str | None,
) -> list[PendingInfo] | None:
    check_count(count)
    floor = 0 if after is None else _sequence("after", after)
    info = await _group_info(backend, stream_id, group)
    if info is None:
        return None
    now = anyio.current_time()
    # One entry is held by one member at a time: its latest delivery (the highest count) wins.
    latest: dict[str, PendingInfo] = {}
    for name, handles in _members(backend, stream_id, group).items():
        for handle in handles:
            for entry_id, deliveries, read_at in handle.live_deliveries(now):
                known = latest.get(entry_id)
                if known is None or known.deliveries < deliveries:
                    latest[entry_id] = PendingInfo(
                        entry_id=entry_id, consumer=name, idle=now - read_at, deliveries=deliveries
                    )
    held = info.num_ack_pending or 0
    if consumer is None and held > len(latest):
        # An empty or short list would say "nothing else is pending": refuse instead.
        raise StreamsinkError(
            f"group {group!r} of stream {stream_id!r} has {held} pending entries, "
            f"{held - len(latest)} of them held by members this connection does not have open "
            "(in other processes): JetStream does not list a group's pending entries"
        )
    rows = [
        row
        for row in latest.values()
        if int(row.entry_id) > floor and (consumer is None or row.consumer == consumer)
    ]
    return sorted(rows, key=lambda r: int(r.entry_id))[:count]


async def delete_idle_consumer(
    backend: NatsBackend, stream_id: str, group: str, consumer: str, min_idle: float
) -> bool:
    if (
        isinstance(min_idle, bool)
        or not isinstance(min_idle, int | float)
        or not (min_idle >= 0 and math.isfinite(min_idle))
    ):
        raise ConfigurationError(f"min_idle must be a number of seconds >= 0, got {min_idle!r}")
    if not await _group_exists(backend, stream_id, group):
        return False
    # From here to the end there is no await: no read or delivery can come in between.
    handles = _members(backend, stream_id, group).get(consumer)
    now = anyio.current_time()
    if not handles or any(h.live_deliveries(now) or now - h.last_read < min_idle for h in handles):
        return False
    for handle in handles:
        handle.listed = False
    return True


async def trim_stream(backend: NatsBackend, stream_id: str, bound: TrimBound) -> int:
    body: dict[str, Any]
    if bound.kind == "maxlen":
        body = {"keep": bound.count} if bound.count else {}
    else:
        seq = _sequence(bound.kind, bound.entry_id or "")
        body = {"seq": seq if bound.kind == "minid" else seq + 1}
        if body["seq"] <= 1:  # (a purge without a sequence would purge everything)
            return 0
    name = backend.stream_name(stream_id)
    subject = f"STREAM.PURGE.{name}"
    answer = await _api(backend, "trim_stream", subject, body, missing=STREAM_NOT_FOUND)
    if answer is None:
        backend.forget_stream(stream_id)
        return 0
    return int(answer.get("purged", 0))


def _sequence(what: str, text: str) -> int:
    if not (text.isdigit() and text.isascii()):
        raise ConfigurationError(
            f"{what} {text!r} is not a NATS entry id: expected a stream sequence (decimal digits)"
        )
    return int(text)


class OperationsMixin:
    """:class:`streamsink.backend.OperableBackend` for :class:`~._backend.NatsBackend` (see
    the module's docstring for what JetStream can and cannot tell)."""

    def _ops(self) -> NatsBackend:
        backend: NatsBackend = self  # type: ignore[assignment]
        backend.check_open()
        return backend

    async def list_streams(self) -> list[str]:
        """Stream ids of the JetStream streams with this backend's prefix, sorted."""
        return await list_streams(self._ops())

    async def list_groups(self, stream_id: str) -> list[GroupInfo] | None:
        """The durable consumers; ``consumers`` counts this backend's members only."""
        return await list_groups(self._ops(), stream_id)

    async def list_consumers(self, stream_id: str, group: str) -> list[ConsumerInfo] | None:
        """This backend's open members of ``group``; None when it or its stream is missing."""
        return await list_consumers(self._ops(), stream_id, group)

    async def list_pending(
        self,
        stream_id: str,
        group: str,
        *,
        after: str | None = None,
        count: int = 100,
        consumer: str | None = None,
    ) -> list[PendingInfo] | None:
        """The live deliveries this backend's members hold (JetStream lists none itself)."""
        return await list_pending(self._ops(), stream_id, group, after, count, consumer)

    async def delete_idle_consumer(
        self, stream_id: str, group: str, consumer: str, *, min_idle: float
    ) -> bool:
        """Unlist this backend's member ``consumer`` if it holds nothing and is idle enough."""
        return await delete_idle_consumer(self._ops(), stream_id, group, consumer, min_idle)

    async def trim_stream(self, stream_id: str, bound: TrimBound) -> int:
        """A JetStream purge; how many entries it removed (0 for a missing stream)."""
        return await trim_stream(self._ops(), stream_id, bound)
