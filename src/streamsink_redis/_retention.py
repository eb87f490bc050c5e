"""Retention beyond ``maxlen``: ``max_age`` (``XTRIM MINID ~``) and ``idle_ttl`` (``PEXPIRE``).

``XADD`` takes one trim strategy, and it keeps ``MAXLEN ~``; the other rules go in the same
pipelined round trip as the appends, one command per distinct stream key after its ``XADD``:

- ``idle_ttl`` alone: ``PEXPIRE key <ms>``.
- ``max_age`` (with or without ``idle_ttl``): the :data:`RETAIN` script, which reads the
  server's clock (``TIME``) and trims ``MINID ~ <now - max_age>``, then sets the TTL. The cut-off
  is the server's time because entry ids are: a client whose clock runs ahead of the server's
  would otherwise trim entries younger than ``max_age`` (and one behind would keep older ones).
  The script touches one key, so it runs on Redis Cluster as it does on one server. It is sent
  by SHA; a server without it cached (``NOSCRIPT``: a restart, ``SCRIPT FLUSH``) gets its text
  in one more round trip.

``~`` trims whole stream nodes only (``stream-node-max-entries``, ``stream-node-max-bytes``), as
``MAXLEN ~`` does: entries a little older than ``max_age`` may remain until their node is all old.

The rules are applied after the entries are written and never fail an append: a refused or lost
retention command is logged, and the stream's next append applies the rules again. After a retry
resolved an append whose first outcome was unknown (:mod:`._append`), the rules are sent again
in one more round trip, since the first ones may not have run.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, final

import redis.exceptions as rex

from ._options import RedisOptions
from ._positions import Script

if TYPE_CHECKING:
    from ._commands import CommandConnection

__all__ = ["RETAIN", "Retention"]

_log = logging.getLogger("streamsink_redis")

RETAIN = Script(
    r"""
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local min = ms - tonumber(ARGV[1])
if min > 0 then
  redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%d', min))
end
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
"""
)
"""``KEYS[1]``: the stream; ``ARGV``: ``max_age`` in ms, ``idle_ttl`` in ms (0 = none)."""


@final
class Retention:
    """The retention rules of one backend, as commands pipelined after its ``XADD`` commands."""

    __slots__ = ("_age_ms", "_ttl_ms")

    def __init__(self, max_age: float, idle_ttl: float) -> None:
        self._age_ms = round(max_age * 1000)
        self._ttl_ms = math.ceil(idle_ttl * 1000)

    @classmethod
    def of(cls, options: RedisOptions) -> Retention | None:
        """The rules ``options`` ask for; None when ``max_age`` and ``idle_ttl`` are both off."""
        if not options.max_age and not options.idle_ttl:
            return None
        return cls(options.max_age, options.idle_ttl)

    def commands(self, appends: Sequence[Sequence[Any]], *, by_sha: bool = True) -> list[Any]:
        """The commands applying the rules to each stream key of ``appends`` (``XADD`` commands:
        the key is their second argument), in order of first appearance."""
        keys = dict.fromkeys(command[1] for command in appends)
        if not self._age_ms:
            return [["PEXPIRE", key, self._ttl_ms] for key in keys]
        args = (self._age_ms, self._ttl_ms)
        run = RETAIN.evalsha if by_sha else RETAIN.eval
        return [run((key,), args) for key in keys]

    async def attempt(self, conn: CommandConnection, appends: list[list[Any]]) -> list[Any]:
        """:meth:`CommandConnection.attempt` of ``appends`` followed by the rules' commands, in
        one round trip; returns the replies of ``appends`` only. Raises as ``attempt`` does
        (the replies of an :class:`._commands.Unanswered` come in order, appends first)."""
        rules = self.commands(appends)
        replies = await conn.attempt([*appends, *rules])
        count = len(appends)
        refused = [r for r in replies[count:] if isinstance(r, rex.ResponseError)]
        if refused:
            await self._refused(conn, appends, refused)
        return replies[:count]

    async def reapply(self, conn: CommandConnection, appends: list[list[Any]]) -> None:
        """Send the rules for ``appends`` again (after a retried append), without failing."""
        try:
            replies = await conn.attempt(self.commands(appends, by_sha=False))
        except (rex.ConnectionError, rex.TimeoutError) as exc:
            _log.warning("retention (max_age/idle_ttl) not applied after a retried append: %s", exc)
            return
        refused = [r for r in replies if isinstance(r, rex.ResponseError)]
        if refused:
            _log.warning("redis refused retention (max_age/idle_ttl): %s", refused[0])

    async def _refused(
        self, conn: CommandConnection, appends: list[list[Any]], refused: list[rex.ResponseError]
    ) -> None:
        if not all(isinstance(error, rex.NoScriptError) for error in refused):
            _log.warning("redis refused retention (max_age/idle_ttl): %s", refused[0])
            return
        # The script cache was emptied: run the text (which caches it again). Rare enough that
        # resending every key's command, not only the refused ones, keeps this simple.
        await self.reapply(conn, appends)
