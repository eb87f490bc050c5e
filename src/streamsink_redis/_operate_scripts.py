"""The Lua script of the operations extension: deleting a consumer only when it holds nothing."""

from __future__ import annotations

from typing import Final

from ._positions import Script

__all__ = ["DELETED", "DELETE_IDLE_CONSUMER"]

DELETED: Final = 1

DELETE_IDLE_CONSUMER: Final = Script(
    r"""
-- KEYS[1] stream; ARGV: group, consumer, min idle ms. XGROUP DELCONSUMER drops the consumer's
-- pending entries with it (they lose their owner and are never claimed by name again), so the
-- check and the delete are one script: nothing can be delivered to it in between.
-- 1 deleted; 0 no such stream, group or consumer; -1 it holds entries; -2 not idle long enough.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local rows = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if type(rows) ~= 'table' or rows.err then return 0 end
for _, row in ipairs(rows) do
  local field = {}
  for i = 1, #row, 2 do field[row[i]] = row[i + 1] end
  if field['name'] == ARGV[2] then
    if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return -1 end
    if tonumber(field['idle']) < tonumber(ARGV[3]) then return -2 end
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
    return 1
  end
end
return 0
"""
)
