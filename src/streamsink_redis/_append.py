"""Retry-safe appends: an ``XADD`` whose reply was lost is resolved, never written twice.

Every entry carries one more field, ``i``, holding a value unique to this backend and entry (a
random per-backend prefix and a counter). The first attempt is the plain pipelined ``XADD`` of
every entry, no extra round trip. When its outcome is unknown (the connection failed or the
deadline passed after the commands went out), entries whose replies did arrive keep them, and a
retry, on a fresh connection:

1. **fences** the connection that failed, if it timed out (one closed by the server, or by a
   middlebox both ways, holds nothing that can still run): ``CLIENT KILL ID <its id>`` (learned
   when it connected), so whatever of it the server had not run yet never runs, even if the
   network delivers it later; and reads the server's clock (``TIME``) in the same round trip,
   which gives a server time no later than the lost attempt was sent (the *floor*);
2. runs :data:`._scripts.RESOLVE_APPEND` for the entries still without a reply, one script per
   stream: an entry found among the stream's entries since the floor gets the id it was written
   under, one provably not written is appended now (same fields, same ``MAXLEN``), and one that
   cannot be told (the scan ran out of budget, or entries since the floor may have been trimmed
   or deleted) is reported: :class:`OutcomeUnknown`, not written again.

A retry whose commands never left (the connection failed while connecting) is a plain resend.
``retries`` bounds the retries of one call, all round trips included. The script may run twice
(a stalled copy arriving late) without harm: its floor is absolute, so the late copy finds what
the first appended.

Residual windows (docs/backends.md): a server that refuses ``CLIENT KILL`` (an ACL without
``+client|kill``, a renamed command) cannot be fenced, so a copy of the lost ``XADD`` still in
flight may land after the retry appended the entry; a failed connection whose id was never
learned (it failed before the reply to its first command) and that timed out rather than closed
cannot be fenced either, so its entries are reported unknown instead of retried. Ids restart
with the server: a connection that timed out across a server restart may, rarely, have its old
id killed on the new server (another client's connection, which then reconnects). A forward jump
of the server's clock between the lost attempt and the retry larger than
:data:`FLOOR_MARGIN_MS` can hide the lost entry from the scan.
"""

from __future__ import annotations

import base64
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, final

import attrs
import redis.exceptions as rex

from streamsink.backend import Entry

from . import _wire as wire
from ._commands import CommandConnection, Unanswered
from ._retention import Retention
from ._scripts import Resolution, resolve_args, resolved

__all__ = ["AppendStatistics", "Appender", "OutcomeUnknown"]

_log = logging.getLogger("streamsink_redis")

FLOOR_MARGIN_MS = 250
"""Taken off the floor: covers the server's clock and ours running at slightly different rates
(and a small step of the server's clock) between the lost attempt and the retry."""


class OutcomeUnknown(rex.RedisError):
    """Entries whose outcome could not be resolved; they were not written again. The backend
    reports it as :class:`streamsink.PublishError`."""


@attrs.define
class AppendStatistics:
    """Counts of the retry path (the first attempts are not counted)."""

    recovered_calls: int = 0  # append calls whose first attempt's outcome was unknown
    resent: int = 0  # entries sent again as they were: their first attempt never left
    found: int = 0  # entries a retry found already written (their id returned)
    appended: int = 0  # entries a retry proved unwritten and appended
    unknown: int = 0  # entries reported unknown (OutcomeUnknown), not written again
    fences: int = 0  # CLIENT KILL commands sent before a retry's scripts
    scanned: int = 0  # stream entries the scripts read

    def as_dict(self) -> dict[str, int]:
        return attrs.asdict(self)


@final
class _Values:
    """Idempotency values: a random prefix of this backend (8 bytes, url-safe base64) and a
    counter in hex, e.g. ``b"q3Jm0X9aZ4E1f"``."""

    __slots__ = ("_next", "_prefix")

    def __init__(self) -> None:
        self._prefix = base64.urlsafe_b64encode(os.urandom(8)).rstrip(b"=")
        self._next = 0

    def one(self) -> bytes:
        n = self._next
        self._next = n + 1
        return b"%b%x" % (self._prefix, n)

    def take(self, count: int) -> list[bytes]:
        start = self._next
        self._next = start + count
        prefix = self._prefix
        return [b"%b%x" % (prefix, n) for n in range(start, start + count)]


_UNANSWERED: Any = object()


@final
class Appender:
    """Appends entries through a :class:`CommandConnection`, retry-safe (module docstring).

    One per backend; its idempotency prefix is drawn when it is made.
    """

    def __init__(self, connection: CommandConnection) -> None:
        self._conn = connection
        self._values = _Values()
        self.statistics = AppendStatistics()
        self.retention: Retention | None = None
        """``max_age``/``idle_ttl`` rules sent with each append (:mod:`._retention`); None: off."""

    async def append(
        self, entries: Sequence[Entry], key: Callable[[str], str], maxlen: int
    ) -> list[str]:
        """XADD ``entries`` (to the Redis keys ``key(stream id)``) and return their ids, in order.

        :raises ConfigurationError: an invalid stream id or entry; nothing was written.
        :raises redis.exceptions.ResponseError: Redis refused an entry (others may be written).
        :raises OutcomeUnknown: some entries may or may not be written; none was written twice.
        :raises redis.exceptions.ConnectionError: no attempt got through (``retries`` exhausted);
            entries may or may not be written.
        """
        if len(entries) == 1:  # the common case: one send, no list building
            entry = entries[0]
            commands = [wire.xadd_args(key(entry.stream_id), entry, maxlen, self._values.one())]
        else:
            values = self._values.take(len(entries))
            commands = [
                wire.xadd_args(key(entry.stream_id), entry, maxlen, value)
                for entry, value in zip(entries, values, strict=True)
            ]
        conn = self._conn
        retention = self.retention
        async with conn.lock:
            sent_at = time.monotonic()
            try:
                if retention is None:
                    replies = await conn.attempt(commands)
                else:
                    replies = await retention.attempt(conn, commands)
            except (rex.ConnectionError, rex.TimeoutError) as failure:  # Unanswered included
                replies = await self._recover(commands, maxlen, failure, sent_at)
                if retention is not None:
                    await retention.reapply(conn, commands)
        ids: list[str] = []
        for reply in replies:
            if type(reply) is bytes:
                ids.append(reply.decode())
            elif isinstance(reply, BaseException):
                raise reply
            else:
                ids.append(wire.text(reply))
        return ids

    async def _recover(
        self,
        commands: list[list[Any]],
        maxlen: int,
        failure: rex.ConnectionError | rex.TimeoutError,
        sent_at: float,
    ) -> list[Any]:
        """Resolve the entries of ``commands`` the failed first attempt left without a reply;
        return every reply, in order (module docstring)."""
        conn = self._conn
        stats = self.statistics
        stats.recovered_calls += 1
        if conn.retries == 0:
            raise failure  # nothing is retried: reported as it is
        results: list[Any] = [_UNANSWERED] * len(commands)
        unknown: dict[int, str] = {}  # entry index -> why its outcome cannot be told
        to_fence: set[int] = set()  # server-side ids of failed connections that carried XADDs
        written = False  # some XADD may have reached the server: only scripts from now on
        floor_ms: int | None = None  # server time no later than the first XADD was sent
        last: rex.RedisError = failure

        def lost_xadds(attempt: rex.RedisError, indexes: Sequence[int]) -> None:
            """A round trip carrying the plain XADDs of ``indexes`` failed."""
            nonlocal last, written
            last = attempt
            if not isinstance(attempt, Unanswered):
                return  # failed while connecting: nothing left
            written = True
            for index, reply in zip(indexes, attempt.replies, strict=False):
                results[index] = reply
            if attempt.closed:
                # Closed by the server (or by a middlebox, both ways): nothing of it can run
                # later. Not killing it by id also spares whoever has that id after a restart.
                return
            if attempt.client_id is not None:
                to_fence.add(attempt.client_id)
            elif conn.fencing:
                # It timed out before the server told its id: the XADDs it holds may still run
                # later, and nothing can stop them.
                for index in indexes:
                    if results[index] is _UNANSWERED:
                        unknown[index] = (
                            "its connection timed out before the server told its id, so it "
                            "could not be closed before a retry"
                        )

        lost_xadds(failure, range(len(commands)))
        tries = 0
        while pending := [
            i for i, r in enumerate(results) if r is _UNANSWERED and i not in unknown
        ]:
            tries += 1
            if tries > conn.retries:
                raise rex.ConnectionError(
                    f"{last}; {_entries(len(pending))} may or may not be written (no reply after "
                    f"{conn.retries} retr{'y' if conn.retries == 1 else 'ies'})"
                ) from last
            if not written:
                try:
                    replies = await conn.attempt([commands[i] for i in pending])
                except (rex.ConnectionError, rex.TimeoutError) as again:
                    lost_xadds(again, pending)
                    continue
                stats.resent += len(pending)
                for index, reply in zip(pending, replies, strict=True):
                    results[index] = reply
                continue
            if floor_ms is None:
                try:
                    floor_ms = await self._fence(to_fence, sent_at)
                except (rex.ConnectionError, rex.TimeoutError) as again:
                    last = again  # kills and TIME only: safe to send again
                    continue
            groups: dict[str, list[int]] = {}
            for index in pending:
                groups.setdefault(commands[index][1], []).append(index)  # by stream key
            _log.debug(
                "append outcome unknown (%s): resolving %s on %d stream(s)",
                last, _entries(len(pending)), len(groups),
            )  # fmt: skip
            scripts = [
                resolve_args(
                    key,
                    [(commands[i][-1], _fields(commands[i])) for i in indexes],
                    maxlen=maxlen,
                    floor_ms=floor_ms,
                )
                for key, indexes in groups.items()
            ]
            try:
                replies = await conn.attempt(scripts)
            except (rex.ConnectionError, rex.TimeoutError) as again:
                # A script is safe to run twice: nothing to fence, the next try runs it again.
                last = again
                replies = again.replies if isinstance(again, Unanswered) else []
            for reply, indexes in zip(replies, groups.values(), strict=False):
                self._settle(reply, indexes, results, unknown)
        if unknown:
            stats.unknown += len(unknown)
            raise OutcomeUnknown(
                f"the outcome of {len(unknown)} of {_entries(len(commands))} is unknown after "
                f"{last} ({'; '.join(sorted(set(unknown.values())))}); not written again to "
                "avoid a duplicate"
            )
        return results

    async def _fence(self, ids: set[int], sent_at: float) -> int:
        """On a fresh connection, ``CLIENT KILL ID`` each failed connection that carried XADDs
        and read the server's clock; return the floor: a server time (ms) no later than
        ``sent_at`` (local monotonic time of the first attempt)."""
        conn = self._conn
        kills = sorted(ids) if conn.fencing else []
        replies = await conn.attempt([*(("CLIENT", "KILL", "ID", cid) for cid in kills), ("TIME",)])
        answered = time.monotonic()
        self.statistics.fences += len(kills)
        for reply in replies[:-1]:
            if isinstance(reply, rex.ResponseError):
                conn.fencing_refused("CLIENT KILL", reply)
                break
        ids.clear()
        clock = replies[-1]
        if isinstance(clock, rex.ResponseError):
            raise OutcomeUnknown(f"TIME was refused ({clock}), so the retry cannot bound its scan")
        seconds, micros = (int(part) for part in clock)
        # TIME ran before its reply arrived: the server's clock read at most `answered - sent_at`
        # after the first attempt was sent.
        elapsed_ms = math.ceil((answered - sent_at) * 1000)
        return seconds * 1000 + micros // 1000 - elapsed_ms - FLOOR_MARGIN_MS

    def _settle(
        self, reply: Any, indexes: list[int], results: list[Any], unknown: dict[int, str]
    ) -> None:
        """Record one script's reply for the entries ``indexes`` it carried."""
        if isinstance(reply, rex.ResponseError):
            # The script did not run (e.g. OOM, NOSCRIPT-like refusals, BUSY): still unknown.
            for index in indexes:
                unknown[index] = f"the retry was refused: {reply}"
            return
        try:
            resolution: Resolution = resolved(reply, len(indexes))
        except ValueError as exc:
            for index in indexes:
                unknown[index] = str(exc)
            return
        stats = self.statistics
        stats.scanned += resolution.scanned
        for index, entry in zip(indexes, resolution.entries, strict=True):
            if entry.outcome == "found":
                stats.found += 1
                results[index] = entry.value.encode()
            elif entry.outcome == "added":
                stats.appended += 1
                results[index] = entry.value.encode()
            elif entry.outcome == "error":
                results[index] = rex.ResponseError(entry.value)
            else:
                unknown[index] = entry.value


def _entries(count: int) -> str:
    return f"{count} entr{'y' if count == 1 else 'ies'}"


def _fields(command: Sequence[Any]) -> Sequence[Any]:
    """The field arguments of an XADD built by :func:`._wire.xadd_args` (after ``*``)."""
    return command[command.index("*", 2) + 1 :]
