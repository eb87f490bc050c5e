"""The hub's bookkeeping: a ``Channel`` is the readers of one stream standing at one cursor (read
as one), a ``Lane`` the channels one shared read serves, with its leader and waiting readers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..backend import SharedCursor

if TYPE_CHECKING:
    from ._reader import SharedReader

__all__ = ["Channel", "Lane"]


class Channel:
    """Readers of one stream at one cursor: each entry read for the channel goes to each of them."""

    __slots__ = ("cursor", "lane", "live", "members")

    def __init__(self, cursor: SharedCursor, lane: Lane) -> None:
        self.cursor = cursor
        self.lane = lane
        # A dict as an ordered set: readers are served in the order they joined.
        self.members: dict[SharedReader, None] = {}
        #: False once the hub dropped it (merged, emptied, failed): a read in flight skips it
        self.live = True

    def __repr__(self) -> str:
        return f"<Channel {self.cursor.stream_id!r} after {self.cursor.after} x{len(self.members)}>"


class Lane:
    """What one read in flight at a time serves: its channels, the streams they are on (the
    backend's grouping counts them), the reader doing the read (the leader) and the readers
    waiting for it."""

    __slots__ = ("channels", "in_flight", "index", "interrupted", "leader", "streams", "waiting")

    def __init__(self, index: int) -> None:
        self.index = index
        self.channels: dict[Channel, None] = {}
        #: channels per stream on this lane (its load is ``len(streams)``)
        self.streams: dict[str, int] = {}
        self.leader: SharedReader | None = None
        #: readers blocked in ``read`` on this lane, in arrival order (the next leader is first)
        self.waiting: dict[SharedReader, None] = {}
        #: a read is in flight; ``interrupted``: it was asked to return (a channel was added)
        self.in_flight = False
        self.interrupted = False

    def add(self, channel: Channel) -> None:
        self.channels[channel] = None
        stream_id = channel.cursor.stream_id
        self.streams[stream_id] = self.streams.get(stream_id, 0) + 1

    def remove(self, channel: Channel) -> None:
        if self.channels.pop(channel, 0) is None:
            stream_id = channel.cursor.stream_id
            left = self.streams[stream_id] - 1
            if left:
                self.streams[stream_id] = left
            else:
                del self.streams[stream_id]

    def promote(self) -> None:
        """Wake the first waiting reader to take over the read, if nobody does it."""
        if self.leader is None:
            for reader in self.waiting:
                reader.wake()
                return
