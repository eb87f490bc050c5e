"""``Hub``: every shared fan-out reader of one backend in a process, their channels and lanes,
and the shared read a leading reader performs for all of them.

There is no task of the hub's own. A reader blocked in ``read`` with nobody reading for its lane
becomes the lane's leader: it reads every channel of the lane in one call of the backend's
:class:`~streamsink.backend.SharedReads` and hands each batch to every reader of the channel,
then goes on reading for the others until it has something of its own (or its wait is over),
and hands the lead to the next waiting reader when it leaves, cancelled or not. With no reader
waiting nothing is read; entries wait in the stream, and the cursors keep their place.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import anyio

from .._exceptions import StreamsinkError
from .._single_flight import SingleFlight
from ..backend import RecordBatch, SharedCursor, SharedReads, StartPosition, StreamBatch
from ._buffer import payload_bytes
from ._lanes import Channel, Lane
from ._reader import SharedReader

__all__ = ["Hub"]

log = logging.getLogger("streamsink")

#: bound on the interrupt a join sends while it holds up nobody but itself
_INTERRUPT_TIMEOUT = 2.0


class Hub:
    """The shared readers of one backend. Made by :func:`~._registry.open_shared_reader`, which
    drops it (and closes its :class:`SharedReads`) when the last reader leaves."""

    __slots__ = (
        "_bounds",
        "_lanes",
        "_on_empty",
        "_readers",
        "_resolving",
        "_streams",
        "closed",
        "shared",
    )

    def __init__(self, shared: SharedReads, on_empty: Callable[[Hub], None]) -> None:
        self.shared = shared
        self._on_empty = on_empty
        self._lanes = [Lane(i) for i in range(max(1, shared.lanes))]
        #: stream id -> cursor's ``after`` -> its channel
        self._streams: dict[str, dict[str, Channel]] = {}
        self._readers = 0
        self._bounds: Counter[int] = Counter()  # readers' buffer bounds: a read takes the least
        self._resolving: SingleFlight[tuple[str, StartPosition], SharedCursor] = SingleFlight()
        self.closed = False

    @property
    def readers(self) -> int:
        """Readers joined and not closed (also those catching up on their own)."""
        return self._readers

    @property
    def channels(self) -> int:
        """Channels being read (distinct cursors)."""
        return sum(len(lane.channels) for lane in self._lanes)

    # -- joining and leaving --------------------------------------------------------------------

    async def join(
        self, stream_id: str, start: StartPosition, bound: int, bound_bytes: int
    ) -> SharedReader:
        """A new reader of ``stream_id`` at ``start`` (resolved now, on no connection of its own),
        reading with the others from its first read."""
        self._readers += 1  # counted before the await: the hub must not close under the join
        try:
            if start.kind == "newest":  # "now" is each reader's own moment
                cursor = await self.shared.resolve(stream_id, start)
            else:  # a fixed point: readers joining at once at it share one resolve (cursors
                # are immutable values)
                cursor = await self._resolving.run(
                    (stream_id, start), lambda: self.shared.resolve(stream_id, start)
                )
        except BaseException:
            self._readers -= 1
            if not self._readers:
                await self._empty()
            raise
        self._bounds[bound] += 1
        reader = SharedReader(self, stream_id, cursor, bound, bound_bytes)
        await self.attach(reader, cursor)
        return reader

    async def attach(self, reader: SharedReader, cursor: SharedCursor) -> None:
        """Put ``reader`` on the channel at ``cursor`` (made if needed, then the lane's read in
        flight is interrupted to read it too)."""
        channel, made = self._channel_at(cursor)
        channel.members[reader] = None
        reader.joined(channel)
        if made:
            await self._interrupt(channel.lane)

    async def leave(self, reader: SharedReader) -> None:
        """``reader`` closed: off its channel; the last reader closes the hub."""
        channel = reader.channel
        if channel is not None:
            channel.members.pop(reader, None)
            if not channel.members:
                self._drop(channel)
        self._bounds[reader.buffer.bound] -= 1
        if not self._bounds[reader.buffer.bound]:
            del self._bounds[reader.buffer.bound]
        self._readers -= 1
        if not self._readers:
            await self._empty()

    async def _empty(self) -> None:
        self.closed = True
        self._on_empty(self)
        with anyio.CancelScope(shield=True):
            try:
                await self.shared.aclose()
            except StreamsinkError as exc:  # closing is best effort
                log.debug("closing shared reads: %s", exc)

    def _channel_at(self, cursor: SharedCursor) -> tuple[Channel, bool]:
        at = self._streams.get(cursor.stream_id)
        if at is None:
            at = self._streams[cursor.stream_id] = {}
        channel = at.get(cursor.after)
        if channel is not None:
            return channel, False
        if at:  # every cursor of a stream in one lane (the backend placed the stream there)
            lane = next(iter(at.values())).lane
        else:
            loads = [len(lane.streams) for lane in self._lanes]
            index = self.shared.lane(cursor.stream_id, loads)
            if not (isinstance(index, int) and 0 <= index < len(self._lanes)):
                raise StreamsinkError(
                    f"SharedReads.lane returned {index!r}, not a lane in 0..{len(self._lanes) - 1}"
                )
            lane = self._lanes[index]
        channel = at[cursor.after] = Channel(cursor, lane)
        lane.add(channel)
        return channel, True

    def _drop(self, channel: Channel) -> None:
        channel.live = False
        channel.lane.remove(channel)
        stream_id = channel.cursor.stream_id
        at = self._streams.get(stream_id)
        if at is not None and at.get(channel.cursor.after) is channel:
            del at[channel.cursor.after]
            if not at:
                del self._streams[stream_id]

    async def _interrupt(self, lane: Lane) -> None:
        # One interrupt per read in flight: the read after it reads every channel added since.
        if lane.in_flight and not lane.interrupted:
            lane.interrupted = True
            with anyio.CancelScope(shield=True), anyio.move_on_after(_INTERRUPT_TIMEOUT):
                await self.shared.interrupt(lane.index)

    async def interrupt_for(self, reader: SharedReader) -> None:
        """Make the read in flight on ``reader``'s lane return (it closed while leading)."""
        lane = reader.lane
        if lane is not None and lane.leader is reader:
            await self._interrupt(lane)

    # -- reading --------------------------------------------------------------------------------

    async def lead(self, lane: Lane, block: float) -> None:
        """One shared read of every channel of ``lane`` (waiting up to ``block`` seconds), and
        its batches handed out. Called by the lane's leader only.

        :raises StreamsinkError: the read failed; every reader waiting on the lane gets the
            error too (each retries on its own schedule).
        """
        channels = list(lane.channels)
        if not channels:
            return
        count = min(self._bounds) if self._bounds else 1
        lane.in_flight, lane.interrupted = True, False
        try:
            batches = await self.shared.read(
                [channel.cursor for channel in channels], count, block, lane=lane.index
            )
        except StreamsinkError as exc:
            for reader in list(lane.waiting):
                if reader is not lane.leader:
                    reader.fail_once(exc)
            raise
        finally:
            lane.in_flight = False
        if len(batches) != len(channels):
            raise StreamsinkError(
                f"SharedReads.read returned {len(batches)} batches for {len(channels)} cursors"
            )
        self.hand_out(channels, batches)

    def hand_out(self, channels: Sequence[Channel], batches: Sequence[StreamBatch]) -> None:
        """Give each live channel's batch to its readers; a reader whose buffer refuses it is
        detached at the cursor before the batch, to catch up on its own."""
        for channel, batch in zip(channels, batches, strict=True):
            if not channel.live:
                continue  # emptied or merged while the read was in flight
            if batch.error is not None:
                self._drop(channel)
                for reader in channel.members:
                    reader.fail(batch.error)
                channel.members.clear()
                continue
            records = batch.records
            if not records and batch.cursor is channel.cursor:
                continue  # nothing came, nothing moved (most channels of a lane, most reads)
            gap = records.gap if type(records) is RecordBatch else None
            if records or gap is not None:
                before = channel.cursor
                nbytes = payload_bytes(records)
                members = channel.members
                # Readers of one batch decode each entry once between them (SharedRecords).
                decoded: dict[str, Any] | None = {} if len(members) > 1 and gap is None else None
                refused = [
                    reader for reader in members if not reader.offer(records, gap, nbytes, decoded)
                ]
                for reader in refused:
                    del channel.members[reader]
                    reader.detach(before)
            self._move(channel, batch.cursor)

    def _move(self, channel: Channel, cursor: SharedCursor) -> None:
        """``channel`` read up to ``cursor``: re-file it, merging it into a channel already there."""
        old = channel.cursor
        if not channel.members:
            self._drop(channel)
            return
        if cursor.after == old.after:
            channel.cursor = cursor
            return
        at = self._streams[old.stream_id]
        if at.get(old.after) is channel:
            del at[old.after]
        channel.cursor = cursor
        other = at.get(cursor.after)
        if other is None:
            at[cursor.after] = channel
            return
        # Two channels reached the same place: their readers read as one from now on.
        channel.live = False
        channel.lane.remove(channel)
        for reader in channel.members:
            other.members[reader] = None
            reader.joined(other)
        channel.members.clear()
