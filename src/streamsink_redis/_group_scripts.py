"""Lua scripts of a group consumer's own pending entries (history reads, nacks and touches)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ._positions import LUA_HELPERS, Script

__all__ = ["NACK_IDLE_MS", "READ_OWN", "SETTLE_OWN", "settle_args"]

NACK_IDLE_MS = 10 * 365 * 24 * 3600 * 1000
"""Idle time (10 years) given to nacked entries so that any ``claim_idle`` takes them at once.
Redis caps an IDLE larger than its clock, so this stays well below the current Unix time in ms."""


READ_OWN: Final = Script(
    LUA_HELPERS
    + r"""
-- KEYS[1] stream; ARGV: group, consumer, count, start id, XPENDING start. A history read of this
-- consumer's pending entries with their delivery counts, atomically (a script, not MULTI: Redis
-- refuses every command queued in a MULTI when it is out of memory). {entries, pending rows}.
local key, group, consumer, count = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local entries = entries_of(
  redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'STREAMS', key, ARGV[4]))
return {entries, redis.call('XPENDING', key, group, ARGV[5], '+', count, consumer)}
"""
)
SETTLE_OWN: Final = Script(
    r"""
-- KEYS[1] stream; ARGV: group, consumer, idle ms, then pairs of id and delivery count (0: any).
-- Set the idle time of the named deliveries that are still the latest ones: the entry is this
-- consumer's, and its delivery count is the one given. Leave the others alone: XCLAIM alone
-- would take an entry back from whoever claimed it meanwhile, and a nack or touch of a
-- superseded delivery must not disturb the newer one. Returns how many were set.
local key, group, consumer, idle = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local own = {}
for i = 4, #ARGV - 1, 2 do
  local row = redis.call('XPENDING', key, group, ARGV[i], ARGV[i], 1)[1]
  local count = tonumber(ARGV[i + 1])
  if row and row[2] == consumer and (count == 0 or row[4] == count) then
    own[#own + 1] = ARGV[i]
  end
end
local owned = #own
if owned > 0 then
  own[#own + 1] = 'IDLE'
  own[#own + 1] = idle
  own[#own + 1] = 'JUSTID'
  redis.call('XCLAIM', key, group, consumer, 0, unpack(own))
end
return owned
"""
)


def settle_args(keys: Sequence[str]) -> list[str | int]:
    """The id and count pairs of :data:`SETTLE_OWN` for ``keys`` (each key once): a key's
    delivery count, or 0 (any delivery this consumer owns) for a plain id."""
    args: list[str | int] = []
    for key in dict.fromkeys(keys):
        args.append(str.__str__(key))
        args.append(getattr(key, "delivery_count", 0))
    return args
