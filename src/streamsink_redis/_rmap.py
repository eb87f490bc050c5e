"""Writes to goa.design/pulse replicated maps (``rmap``), as pulse's own scripts make them.

A pulse replicated map named ``<name>`` is a hash ``map:<name>:content`` and a pub/sub channel
``map:<name>:updates``. Every write is one Lua script that changes the hash, increments its
``=rev`` field, records the kind of write in ``=kind`` (``set``, ``del``) and publishes the change
on the channel as ``set:`` or ``del:`` followed by ``struct.pack`` records (a 4-byte little-endian
length, then the bytes): key, value and revision for ``set``, key and revision for ``del``.
Replicas (every pulse process that joined the map) read the hash once with ``HGETALL`` and then
apply each published change whose revision is newer than theirs; a write that skipped ``=rev`` or
the message would be ignored or never seen by them, which is why nothing here writes the hash
any other way. Array values (the consumers map) are JSON arrays, written with ``cjson``.

The Lua functions below do exactly what pulse's ``rmap`` scripts do, command for command, so the
hash and the published bytes are the same whichever side wrote them. Redis generates the
messages, so they are byte-identical by construction. Channels are passed as arguments, not
keys: the backend does not run on Redis Cluster, and a channel is not a key.
"""

from __future__ import annotations

from typing import Final

__all__ = ["META_FIELDS", "RMAP_LUA", "channel", "content"]

META_FIELDS: Final = ("=rev", "=kind")
"""Fields of a map's hash that are pulse's bookkeeping, not entries."""


def content(name: str) -> str:
    """The hash of the replicated map ``name``."""
    return f"map:{name}:content"


def channel(name: str) -> str:
    """The pub/sub channel of the replicated map ``name``."""
    return f"map:{name}:updates"


RMAP_LUA: Final = r"""
-- pulse rmap writes. hash: map:<name>:content, chan: map:<name>:updates.
local function rmap_bump(hash, kind)
  local rev = tostring(redis.call('HINCRBY', hash, '=rev', 1))
  redis.call('HSET', hash, '=kind', kind)
  return rev
end
local function rmap_published_set(hash, chan, key, value)
  local rev = rmap_bump(hash, 'set')
  redis.call('PUBLISH', chan, 'set:' .. struct.pack('ic0ic0ic0',
    string.len(key), key, string.len(value), value, string.len(rev), rev))
end
local function rmap_published_del(hash, chan, key)
  local rev = rmap_bump(hash, 'del')
  redis.call('PUBLISH', chan, 'del:' .. struct.pack('ic0ic0',
    string.len(key), key, string.len(rev), rev))
end
-- Map.Set: the previous value (false when there was none).
local function rmap_set(hash, chan, key, value)
  local prev = redis.call('HGET', hash, key)
  redis.call('HSET', hash, key, value)
  rmap_published_set(hash, chan, key, value)
  return prev
end
-- Map.Delete: the previous value; deleting a missing key changes and publishes nothing.
local function rmap_delete(hash, chan, key)
  local prev = redis.call('HGET', hash, key)
  if not prev then return false end
  redis.call('HDEL', hash, key)
  rmap_published_del(hash, chan, key)
  return prev
end
-- An array value: a JSON array (older pulse releases wrote comma-separated lists).
local function rmap_values(raw)
  if not raw then return {} end
  local ok, decoded = pcall(cjson.decode, raw)
  if ok and type(decoded) == 'table' then return decoded end
  local values = {}
  for item in string.gmatch(raw, '[^,]+') do values[#values + 1] = item end
  return values
end
-- Map.AppendUniqueValues with one item: appended unless present.
local function rmap_append_unique(hash, chan, key, item)
  local values = rmap_values(redis.call('HGET', hash, key))
  for _, present in ipairs(values) do
    if present == item then return false end
  end
  values[#values + 1] = item
  local encoded = cjson.encode(values)
  redis.call('HSET', hash, key, encoded)
  rmap_published_set(hash, chan, key, encoded)
  return true
end
-- Map.RemoveValues with one item: the key goes when its array empties.
local function rmap_remove(hash, chan, key, item)
  local raw = redis.call('HGET', hash, key)
  if not raw then return false end
  local remaining, removed = {}, false
  for _, present in ipairs(rmap_values(raw)) do
    if present == item then removed = true else remaining[#remaining + 1] = present end
  end
  if not removed then return false end
  if #remaining == 0 then
    redis.call('HDEL', hash, key)
    rmap_published_del(hash, chan, key)
  else
    local encoded = cjson.encode(remaining)
    redis.call('HSET', hash, key, encoded)
    rmap_published_set(hash, chan, key, encoded)
  end
  return true
end
-- Not a pulse write: drop a hash left with nothing but =rev and =kind, but only while no replica
-- follows its channel. A replica remembers the revision it read; a hash deleted under it would
-- restart revisions at 1 and it would ignore every later write. With nobody subscribed, the next
-- replica to join reads the hash afresh.
local function rmap_drop_if_unused(hash, chan)
  local size = redis.call('HLEN', hash)
  if size == 0 then return end
  local meta = redis.call('HEXISTS', hash, '=rev') + redis.call('HEXISTS', hash, '=kind')
  if size > meta then return end
  if redis.call('PUBSUB', 'NUMSUB', chan)[2] ~= 0 then return end
  redis.call('DEL', hash)
end
"""
"""The functions, to prepend to a script that calls them."""
