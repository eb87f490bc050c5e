"""Group consumers: one durable pull consumer per group, explicit acks, AckWait = grace period.

Acknowledgements are JetStream's own, sent per delivery to the reply subject of the message
this consumer got, as requests: the server answers each, and a missing consumer has no
responder, which is how a lost group shows on ``ack``, ``nack``, ``touch`` and ``term``.

JetStream acts on a ``-NAK`` or ``+WPI`` for the entry whichever delivery's subject it came on:
a late one for a delivery that was redelivered meanwhile would redeliver (or renew) the newer
delivery. So ``nack`` and ``touch`` go out only for a delivery that is still live: the latest
this consumer read of its entry (by the key's delivery count), and within its AckWait (past it,
JetStream has redelivered it, perhaps to another consumer, or is about to).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import anyio
import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import api
from streamsink import BackendUnavailableError, ConfigurationError, GroupLostError
from streamsink.backend import DeliveryKey, Record, RecordBatch, StartPosition

from ._errors import STREAM_NOT_FOUND, translated
from ._group_gaps import GroupGaps
from ._handle import Handle, check_count, record_of
from ._names import MAX_NAME, encode
from ._pull import ConsumerGone, pull

if TYPE_CHECKING:
    from ._backend import NatsBackend

__all__ = ["NatsGroupConsumer", "deliver_config"]

_MAX_HELD = 65536

_LIVE_FRACTION = 0.9
"""A delivery counts as live for this fraction of AckWait after it was read or renewed: the
server's clock started when it sent the message, a little before this process saw it."""


class _Held:
    """A delivery this consumer read and has not settled: its count, the reply subject to
    settle it on, and until when (``anyio.current_time()``) it is still live."""

    __slots__ = ("count", "live_until", "read_at", "reply")

    def __init__(self, count: int, reply: str, live_until: float, read_at: float) -> None:
        self.count = count
        self.reply = reply
        self.live_until = live_until
        self.read_at = read_at


def deliver_config(start: StartPosition) -> dict[str, object]:
    """ConsumerConfig fields that start a consumer at ``start``."""
    if start.kind == "oldest":
        return {"deliver_policy": api.DeliverPolicy.ALL}
    if start.kind == "newest":
        return {"deliver_policy": api.DeliverPolicy.NEW}
    if start.kind == "after":
        return {
            "deliver_policy": api.DeliverPolicy.BY_START_SEQUENCE,
            "opt_start_seq": int(start.entry_id or "0") + 1,
        }
    return {"deliver_policy": api.DeliverPolicy.BY_START_TIME, "opt_start_time": start.time}


class NatsGroupConsumer(Handle):
    """One named consumer of a group; the group is the durable JetStream consumer."""

    def __init__(
        self, backend: NatsBackend, stream_id: str, group: str, consumer: str, grace: float
    ) -> None:
        super().__init__(backend, stream_id, "group consumer")
        self.group = group
        self._consumer = consumer
        self._grace = grace
        self._durable = encode(group)
        if len(self._durable) > MAX_NAME:
            raise ConfigurationError(
                f"group name {group[:40]!r}… is too long for NATS: at most {MAX_NAME} "
                "characters once encoded"
            )
        self._stream = backend.stream_name(stream_id)
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{self._stream}.{self._durable}"
        # entry id -> its latest delivery to this consumer
        self._held: dict[str, _Held] = {}
        self._gaps = GroupGaps(stream_id)
        self._stash: list[Msg] = []  # delivered after a loss: the next read returns them first
        # For the operator listings (see ._operate): when it last read, and whether it was
        # deleted as an idle member since (it is listed again once it reads).
        self.last_read = anyio.current_time()
        self.listed = True

    @property
    def consumer(self) -> str:
        return self._consumer

    async def ensure_group(self, start: StartPosition) -> None:
        """Create the durable consumer at ``start`` (and the stream) unless it exists."""
        self.check()
        backend = self.backend
        js = backend.js
        config = api.ConsumerConfig(
            durable_name=self._durable,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=self._grace,
            max_deliver=-1,
            max_ack_pending=-1,
            filter_subject=backend.subject(self.stream_id),
            description=f"streamsink group {self.group[:200]}",
            **deliver_config(start),  # type: ignore[arg-type]
        )
        self._gaps.forget()
        self._stash = []
        with translated("ensure_group", backend.description):
            self.incarnation = await backend.ensure_stream(self.stream_id, fresh=True)
            for _ in range(2):
                try:
                    info = await js.consumer_info(self._stream, self._durable)
                    if info.delivered.consumer_seq:  # else it starts where its creator said
                        self._gaps.start(info.delivered.consumer_seq, info.delivered.stream_seq)
                    return
                except nats.js.errors.NotFoundError as exc:
                    if exc.err_code == STREAM_NOT_FOUND:
                        backend.forget_stream(self.stream_id)
                        self.incarnation = await backend.ensure_stream(self.stream_id)
                        continue
                try:
                    await self._create(config, start)
                    return
                except nats.js.errors.NotFoundError as exc:
                    if exc.err_code != STREAM_NOT_FOUND:
                        raise
                    backend.forget_stream(self.stream_id)
                    self.incarnation = await backend.ensure_stream(self.stream_id)
            await self._create(config, start)

    async def _create(self, config: api.ConsumerConfig, start: StartPosition) -> None:
        await self.backend.js.add_consumer(self._stream, config)
        if start.kind == "after":
            # JetStream moves a start past trimmed entries by itself: a loss to report.
            self._gaps.start(0, int(start.entry_id or "0"))

    async def read_new(self, count: int, block: float) -> Sequence[Record]:
        """Up to ``count`` deliveries (first ones, and redeliveries JetStream made after
        AckWait, with their ``num_delivered``), waiting up to ``block`` seconds."""
        check_count(count)
        self.check()
        msgs = self._stash[:count]
        del self._stash[:count]
        if not msgs:
            with self.wakeable():
                try:
                    with translated("read_new", self.backend.description):
                        msgs = await pull(self.backend.nc, self._next, count, block)
                except ConsumerGone:
                    await self._lost()
        gap, before_next_loss = self._gaps.split(msgs)
        if before_next_loss < len(msgs):
            self._stash[:0] = msgs[before_next_loss:]
            msgs = msgs[:before_next_loss]
        records: list[Record] = [] if gap is None else RecordBatch(gap=gap)
        held = self._held
        now = anyio.current_time()
        self.last_read, self.listed = now, True
        live_until = now + self._grace * _LIVE_FRACTION
        for msg in msgs:
            count = msg.metadata.num_delivered
            record = record_of(msg, count)
            held.pop(record.entry_id, None)  # re-inserted last: the dict stays in read order
            held[record.entry_id] = _Held(count, msg.reply, live_until, now)
            records.append(record)
        # Deliveries this consumer read but never settled (redelivered to another consumer and
        # settled there) would stay here for good: forget the oldest beyond a bound. Settling
        # one of those later is then ignored, and JetStream redelivers it after AckWait.
        while len(held) > _MAX_HELD:
            del held[next(iter(held))]
        return records

    async def _lost(self) -> None:
        await self.raise_if_vanished()
        raise GroupLostError(f"group {self.group!r} of stream {self.stream_id!r} is gone")

    def _to_settle(self, ids: Sequence[str], *, live_only: bool) -> list[tuple[str, _Held]]:
        """The held deliveries ``ids`` name (each once). ``live_only`` (nack, touch): only a
        key's own delivery (a plain id names the latest), and only while it is live."""
        held = self._held
        found = []
        now = anyio.current_time()
        for key in dict.fromkeys(ids):
            delivery = held.get(key)
            if delivery is None:
                continue
            if live_only:
                count = getattr(key, "delivery_count", None)
                if (count is not None and count != delivery.count) or now >= delivery.live_until:
                    continue  # superseded or expired: the newer delivery is left alone
            found.append((str.__str__(key), delivery))
        return found

    async def _settle(
        self, ids: Sequence[str], verb: bytes, *, keep: bool, live_only: bool
    ) -> None:
        self.check()
        held = self._to_settle(ids, live_only=live_only)
        if not held:
            return
        nc = self.backend.nc
        timeout = self.backend.options.request_timeout
        gone: list[str] = []
        failed: list[Exception] = []
        done: list[tuple[str, _Held]] = []
        sent_at = anyio.current_time()

        async def settle(entry_id: str, delivery: _Held) -> None:
            # Errors are kept, not raised: a task group would raise them as an ExceptionGroup.
            try:
                await nc.request(delivery.reply, verb, timeout=timeout)
                done.append((entry_id, delivery))
            except nats.errors.NoRespondersError:
                gone.append(entry_id)
            except (nats.errors.Error, OSError, TimeoutError) as exc:
                failed.append(exc)

        async with anyio.create_task_group() as tg:
            for entry_id, delivery in held:
                tg.start_soon(settle, entry_id, delivery)
        for entry_id, delivery in done:
            if keep:  # +WPI: AckWait started again when the server took it, after sent_at
                delivery.live_until = sent_at + self._grace * _LIVE_FRACTION
            elif self._held.get(entry_id) is delivery:
                # (A read meanwhile may have handed out a newer delivery: that one stays.)
                del self._held[entry_id]
        if gone:
            await self._lost()
        if failed:
            self.check()
            # The core retries with the same ids: only those not settled are sent again.
            raise BackendUnavailableError(
                f"{verb.decode()} of {len(failed)} of {len(held)} deliveries on "
                f"{self.backend.description} failed: {type(failed[0]).__name__} {failed[0]}"
            )

    async def ack(self, entry_ids: Sequence[str]) -> None:
        """``+ACK`` each held entry (on its latest delivery's subject: JetStream acks the entry
        whichever delivery it is); ids not held are ignored."""
        await self._settle(entry_ids, b"+ACK", keep=False, live_only=False)

    async def nack(self, keys: Sequence[DeliveryKey]) -> None:
        """``-NAK`` each live delivery named: JetStream redelivers at once. A superseded or
        expired delivery is left alone (a ``-NAK`` would redeliver the newer one)."""
        await self._settle(keys, b"-NAK", keep=False, live_only=True)

    async def touch(self, keys: Sequence[DeliveryKey]) -> None:
        """``+WPI`` (work in progress) for each live delivery named: its AckWait starts again.
        A superseded or expired delivery is left alone (a ``+WPI`` would renew the newer one)."""
        await self._settle(keys, b"+WPI", keep=True, live_only=True)

    async def term(self, entry_ids: Sequence[str]) -> None:
        """``+TERM`` each held entry: never redelivered; JetStream records it as terminated."""
        await self._settle(entry_ids, b"+TERM", keep=False, live_only=False)

    def live_deliveries(self, now: float) -> list[tuple[str, int, float]]:
        """The deliveries this member holds and JetStream has not redelivered yet (within
        AckWait): entry id, delivery count, time read."""
        return [(key, d.count, d.read_at) for key, d in self._held.items() if now < d.live_until]

    async def read_own_pending(self, after: str | None, count: int) -> Sequence[Record]:
        """Not supported (``own_pending`` is False): JetStream's pending entries are the
        group's, not a consumer name's."""
        raise ConfigurationError("NATS group consumers have no own pending entries")

    async def claim_idle(self, min_idle: float, count: int) -> Sequence[Record]:
        """Not supported (``claims`` is False): JetStream redelivers after AckWait itself."""
        raise ConfigurationError("NATS redelivers by itself; there is nothing to claim")

    async def aclose(self) -> None:
        """Forget this consumer's deliveries (they stay pending on the server and are
        redelivered after AckWait). The durable consumer is the group and stays."""
        self.close()
