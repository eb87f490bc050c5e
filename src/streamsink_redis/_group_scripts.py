"""Lua scripts of a group consumer's own pending entries (history reads and lease renewal)."""

from __future__ import annotations

from typing import Final

from ._positions import LUA_HELPERS, Script

__all__ = ["READ_OWN", "TOUCH_OWN"]

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
TOUCH_OWN: Final = Script(
    r"""
-- KEYS[1] stream; ARGV: group, consumer, idle ms, ids... Reset the idle time of the ids this
-- consumer still owns; leave the others alone (XCLAIM alone would take them back from whoever
-- claimed them meanwhile).
local key, group, consumer, idle = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local own = {}
for i = 4, #ARGV do
  local row = redis.call('XPENDING', key, group, ARGV[i], ARGV[i], 1)[1]
  if row and row[2] == consumer then own[#own + 1] = ARGV[i] end
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
