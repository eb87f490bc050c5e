"""Fan-out readers: an ephemeral pull consumer without acknowledgements, deleted on ``aclose``.

The reader keeps its own cursor (the next stream sequence). Sequences have no holes (entries are
only ever trimmed from the front), so a read whose first entry is past the cursor has found
entries trimmed before it read them: it returns a ``RecordBatch`` naming them (a ``Gap``).

A read that does not finish normally (cancelled, woken, failed) may have left messages on their
way to its dropped inbox, and a consumer without acks never sends them again: the next read then
replaces the consumer by one starting at the cursor, so nothing is skipped or read twice.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import anyio
import nats.errors
import nats.js.errors
from nats.js import api
from streamsink.backend import Gap, Record, RecordBatch, StartPosition

from ._errors import translated
from ._handle import Handle, check_count, record_of
from ._pull import ConsumerGone, pull

if TYPE_CHECKING:
    from ._backend import NatsBackend

__all__ = ["NatsReader"]

# An idle reader's consumer is removed by the server after this long; the next read re-creates it.
_INACTIVE = 60.0


class NatsReader(Handle):
    """A fan-out reader on one stream."""

    def __init__(self, backend: NatsBackend, stream_id: str) -> None:
        super().__init__(backend, stream_id, "reader")
        self._stream = backend.stream_name(stream_id)
        self._next_seq: int | None = None
        self._start_time: datetime | None = None
        self._name: str | None = None
        self._dirty = True

    async def start(self, start: StartPosition) -> None:
        """Resolve ``start`` now, so that nothing appended after opening is missed."""
        backend = self.backend
        with translated("open_reader", backend.description):
            self.incarnation = await backend.ensure_stream(self.stream_id, fresh=True)
            if start.kind == "after":
                self._next_seq = int(start.entry_id or "0") + 1
            elif start.kind in ("oldest", "newest"):
                # Entries trimmed before the reader started are not its loss: start at the
                # first entry held now (a stream that never held any says 0).
                state = (await backend.js.stream_info(self._stream)).state
                oldest = max(1, state.first_seq)
                self._next_seq = oldest if start.kind == "oldest" else state.last_seq + 1
            else:
                self._start_time = start.time
            await self._replace()

    async def _replace(self) -> None:
        await self._delete()
        if self._next_seq is not None:
            where: dict[str, object] = {
                "deliver_policy": api.DeliverPolicy.BY_START_SEQUENCE,
                "opt_start_seq": self._next_seq,
            }
        else:
            where = {
                "deliver_policy": api.DeliverPolicy.BY_START_TIME,
                "opt_start_time": self._start_time,
            }
        name = f"streamsink-reader-{secrets.token_hex(8)}"
        config = api.ConsumerConfig(
            name=name,
            ack_policy=api.AckPolicy.NONE,
            filter_subject=self.backend.subject(self.stream_id),
            mem_storage=True,
            num_replicas=1,
            inactive_threshold=_INACTIVE,
            **where,  # type: ignore[arg-type]
        )
        await self.backend.js.add_consumer(self._stream, config)
        self._name = name
        self._dirty = False

    async def _delete(self) -> None:
        name, self._name = self._name, None
        if name is None:
            return
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await self.backend.js.delete_consumer(self._stream, name)

    async def read(self, count: int, block: float) -> Sequence[Record]:
        """Up to ``count`` entries after the cursor, waiting up to ``block`` seconds."""
        check_count(count)
        self.check()
        msgs = []
        with self.wakeable(), translated("read", self.backend.description):
            for attempt in range(2):
                if self._dirty or self._name is None:
                    try:
                        await self._replace()
                    except nats.js.errors.NotFoundError:
                        await self.raise_if_vanished()
                        raise
                self._dirty = True
                try:
                    msgs = await pull(
                        self.backend.nc,
                        f"$JS.API.CONSUMER.MSG.NEXT.{self._stream}.{self._name}",
                        count,
                        block,
                    )
                except ConsumerGone:
                    # Removed for inactivity, or the stream went: then the reader ends.
                    await self.raise_if_vanished()
                    if attempt:
                        raise nats.errors.TimeoutError from None
                    continue
                self._dirty = False
                break
        records = [record_of(msg, 1) for msg in msgs]
        if not records:
            return records
        seqs = [int(record.entry_id) for record in records]
        for index in range(1, len(seqs)):
            if seqs[index] != seqs[index - 1] + 1:
                # Trimmed while this batch was delivered: a batch reports a loss before its
                # first record only, so end it here; the next read starts a consumer at the
                # cursor and finds the loss first.
                records, seqs = records[:index], seqs[:index]
                self._dirty = True
                break
        expected, self._next_seq = self._next_seq, seqs[-1] + 1
        first = seqs[0]
        if expected is None or first <= expected:  # started at a time: nothing to compare
            return records
        gap = Gap(
            stream_id=self.stream_id,
            after=str(expected - 1) if expected > 1 else None,
            before=records[0].entry_id,
            count=first - expected,
        )
        return RecordBatch(records, gap)

    async def aclose(self) -> None:
        """Delete the reader's consumer: no server state is left."""
        if self._closed:
            return
        self.close()
        # If this fails, the server drops the consumer after _INACTIVE seconds anyway.
        with (
            anyio.CancelScope(shield=True),
            anyio.move_on_after(1),
            contextlib.suppress(nats.errors.Error, OSError),
        ):
            await self._delete()
