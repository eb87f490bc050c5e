"""The Lua scripts of pulse's keep-alive protocol (:mod:`._keepalive`): joining, refreshing and
leaving a group's registry and keep-alive map, and forgetting a destroyed stream."""

from __future__ import annotations

from . import _rmap as rmap
from ._positions import Script

__all__ = ["FORGET_STREAM", "JOIN", "LEAVE", "REFRESH", "REFRESH_MANY", "REFRESH_MANY_ARGS"]

# A registry entry is a JSON array of stream ids, as pulse keeps its arrays.
_MEMBERS_LUA = r"""
local function members_add(hash, consumer, stream)
  local streams = rmap_values(redis.call('HGET', hash, consumer))
  for _, present in ipairs(streams) do
    if present == stream then return end
  end
  streams[#streams + 1] = stream
  redis.call('HSET', hash, consumer, cjson.encode(streams))
end
-- How many streams still list the consumer once `stream` is removed.
local function members_remove(hash, consumer, stream)
  local remaining = {}
  for _, present in ipairs(rmap_values(redis.call('HGET', hash, consumer))) do
    if present ~= stream then remaining[#remaining + 1] = present end
  end
  if #remaining == 0 then
    redis.call('HDEL', hash, consumer)
  else
    redis.call('HSET', hash, consumer, cjson.encode(remaining))
  end
  return #remaining
end
"""

_PRELUDE = rmap.RMAP_LUA + _MEMBERS_LUA

# Every script: KEYS = stream, keep-alive hash, consumers hash, registry hash;
# ARGV = group, consumer, now (unix ns), keep-alive channel, consumers channel, stream id.
JOIN = Script(
    _PRELUDE
    + r"""
-- Before the consumer exists (its first read creates it): a pulse sweep must never find it in
-- the group without a keep-alive (pulse creates its own consumers first, a small race).
members_add(KEYS[4], ARGV[2], ARGV[6])
rmap_append_unique(KEYS[3], ARGV[5], ARGV[1], ARGV[2])
rmap_set(KEYS[2], ARGV[4], ARGV[2], ARGV[3])
return 1
"""
)
REFRESH = Script(
    _PRELUDE
    + r"""
-- {rejoined, listed}: rejoined = 1 when the keep-alive entry was gone (pulse deletes it with a
-- stale consumer) and the consumer re-registered; listed = 1 / 0 whether the group lists the
-- consumer, -1 when the group is gone.
local rejoined = 0
if not rmap_set(KEYS[2], ARGV[4], ARGV[2], ARGV[3]) then
  members_add(KEYS[4], ARGV[2], ARGV[6])
  rmap_append_unique(KEYS[3], ARGV[5], ARGV[1], ARGV[2])
  rejoined = 1
end
local listed = -1
local consumers = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if type(consumers) == 'table' and consumers.err == nil then
  listed = 0
  for _, info in ipairs(consumers) do
    for i = 1, #info, 2 do
      if info[i] == 'name' and info[i + 1] == ARGV[2] then listed = 1 end
    end
  end
end
return {rejoined, listed}
"""
)
REFRESH_MANY_ARGS = 4
"""Arguments per consumer of ``REFRESH_MANY`` (after its 3 common ones)."""

# KEYS = keep-alive hash, registry hash, then per consumer: its stream, its stream's consumers
# hash; ARGV = group, now (unix ns), keep-alive channel, then per consumer: its name, stream id,
# consumers channel, and '1' to look it up in XINFO CONSUMERS ('0' not to).
REFRESH_MANY = Script(
    _PRELUDE
    + r"""
-- REFRESH for many consumers of one group at once: the keep-alive hash and the messages are what
-- as many Map.Set calls in a row would leave (each message with its own revision, in order), in
-- five commands and a PUBLISH per consumer. The messages go only if a replica follows the
-- channel: one that joins later reads the hash (and its =rev) after subscribing, and nothing
-- can subscribe while a script runs. A consumer the registry no longer lists has left (LEAVE
-- ran since the caller looked): it is skipped, not registered again. Returns {rejoined, listed}
-- per consumer, as REFRESH (listed = -2 when not looked up, -3 when skipped).
local n = (#ARGV - 3) / 4
local names = {}
for i = 1, n do names[i] = ARGV[4 * i] end
local registered = redis.call('HMGET', KEYS[2], unpack(names))
local before = redis.call('HMGET', KEYS[1], unpack(names))
local fields, written = {}, {}
for i = 1, n do
  if registered[i] then
    written[#written + 1] = names[i]
    fields[#fields + 1] = names[i]
    fields[#fields + 1] = ARGV[2]
  end
end
if #written > 0 then
  redis.call('HSET', KEYS[1], unpack(fields))
  local last = redis.call('HINCRBY', KEYS[1], '=rev', #written)
  redis.call('HSET', KEYS[1], '=kind', 'set')
  if redis.call('PUBSUB', 'NUMSUB', ARGV[3])[2] > 0 or redis.call('PUBSUB', 'NUMPAT') > 0 then
    for i, key in ipairs(written) do
      local rev = tostring(last - #written + i)
      redis.call('PUBLISH', ARGV[3], 'set:' .. struct.pack('ic0ic0ic0',
        string.len(key), key, string.len(ARGV[2]), ARGV[2], string.len(rev), rev))
    end
  end
end
local out = {}
for i = 1, n do
  local rejoined, listed = 0, -2
  if not registered[i] then
    listed = -3
  else
    if not before[i] then
      members_add(KEYS[2], names[i], ARGV[4 * i + 1])
      rmap_append_unique(KEYS[2 + 2 * i], ARGV[4 * i + 2], ARGV[1], names[i])
      rejoined = 1
    end
    if ARGV[4 * i + 3] == '1' then
      listed = -1
      local consumers = redis.pcall('XINFO', 'CONSUMERS', KEYS[1 + 2 * i], ARGV[1])
      if type(consumers) == 'table' and consumers.err == nil then
        listed = 0
        for _, info in ipairs(consumers) do
          for j = 1, #info, 2 do
            if info[j] == 'name' and info[j + 1] == names[i] then listed = 1 end
          end
        end
      end
    end
  end
  out[2 * i - 1] = rejoined
  out[2 * i] = listed
end
return out
"""
)
LEAVE = Script(
    _PRELUDE
    + r"""
-- 0: the consumer still holds entries, so it stays (keep-alive written once more); 1: it was
-- deleted from the group (if the group still exists) and its entries removed.
local held = redis.pcall('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
local grouped = type(held) == 'table' and held.err == nil
if grouped and #held > 0 then
  rmap_set(KEYS[2], ARGV[4], ARGV[2], ARGV[3])
  return 0
end
if grouped then redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2]) end
rmap_remove(KEYS[3], ARGV[5], ARGV[1], ARGV[2])
if members_remove(KEYS[4], ARGV[2], ARGV[6]) == 0 then
  rmap_delete(KEYS[2], ARGV[4], ARGV[2])
end
rmap_drop_if_unused(KEYS[2], ARGV[4])
rmap_drop_if_unused(KEYS[3], ARGV[5])
return 1
"""
)


FORGET_STREAM = Script(
    _PRELUDE
    + r"""
-- KEYS: stream, its consumers hash; ARGV: stream id, consumers channel. Before the stream is
-- deleted: the streamsink consumers of each of its groups leave the group's registry (and its
-- keep-alive map when no other stream lists them), and the consumers map goes (pulse's destroy
-- tombstone instead while a replica follows it). pulse's own keep-alive entries stay, as pulse's
-- Destroy leaves them.
local groups = redis.pcall('XINFO', 'GROUPS', KEYS[1])
if type(groups) ~= 'table' or groups.err ~= nil then groups = {} end
for _, info in ipairs(groups) do
  local group
  for i = 1, #info, 2 do
    if info[i] == 'name' then group = info[i + 1] end
  end
  local registry = 'streamsink:sink:' .. group .. ':consumers'
  local hash = 'map:sink:' .. group .. ':keepalive:content'
  local chan = 'map:sink:' .. group .. ':keepalive:updates'
  for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], group)) do
    local name
    for i = 1, #consumer, 2 do
      if consumer[i] == 'name' then name = consumer[i + 1] end
    end
    if redis.call('HEXISTS', registry, name) == 1
        and members_remove(registry, name, ARGV[1]) == 0 then
      rmap_delete(hash, chan, name)
    end
  end
  rmap_drop_if_unused(hash, chan)
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  if redis.call('PUBSUB', 'NUMSUB', ARGV[2])[2] == 0 then
    redis.call('DEL', KEYS[2])
  else
    local rev = redis.call('HINCRBY', KEYS[2], '=rev', 1)
    redis.call('DEL', KEYS[2])
    redis.call('HSET', KEYS[2], '=rev', rev, '=kind', 'destroy')
    redis.call('PUBLISH', ARGV[2], 'destroy:' .. tostring(rev))
  end
end
return 1
"""
)
