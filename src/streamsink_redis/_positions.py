"""Where a group or reader stands in a stream, in Redis 7's own counters, to tell when trimming
took entries before they were read.

Redis 7 counts the entries ever added to a stream (``entries-added``) and, per group, how many of
them the group has read (``entries-read``). A group whose last-delivered id is older than the
first entry kept has lost ``entries-added - length - entries-read`` entries to trimming. Redis
does not count those when a read crosses them (7.0 lets ``entries-read`` fall behind for good;
7.4 and later re-estimate it as if nothing was lost), so the scripts here count them first,
report them, and move ``entries-read`` past them with ``XGROUP SETID ... ENTRIESREAD`` in the
same atomic step, so each loss is reported once, by whichever consumer of the group crosses it.
Groups are created with ``ENTRIESREAD`` set (Redis leaves it unknown for ``$``, ``0`` and ids),
so their position is known from the start.

Fan-out readers keep their position client-side (:class:`ReaderPosition`), from the stream's
``entries-added`` and length read atomically with each checked read.

Every script touches one key (the stream), so they run on Redis Cluster as on one server. None
writes where a plain read would not: joining an existing group never writes (Redis refuses
``XGROUP CREATE`` when out of memory even for a group that exists), and reads only move a group's
position, which Redis allows when out of memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal, final

import attrs

from streamsink.backend import Gap

from . import _wire as wire

__all__ = [
    "ENSURE_GROUP",
    "LUA_HELPERS",
    "CHECK_GROUP",
    "CHECK_STREAM",
    "ReaderPosition",
    "Script",
    "group_gap",
    "id_key",
    "info_field",
]

# Helpers of the scripts: exact comparison of stream ids (Lua numbers lose precision past
# 2**53: by digit count, then as text), fields of XINFO replies, one stream's entries of a read.
LUA_HELPERS = r"""
local function split(id)
  local dash = string.find(id, '-', 1, true)
  if not dash then return id, '0' end
  return string.sub(id, 1, dash - 1), string.sub(id, dash + 1)
end
local function cmp_num(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end
local function cmp(a, b)
  local ams, aseq = split(a)
  local bms, bseq = split(b)
  local c = cmp_num(ams, bms)
  if c ~= 0 then return c end
  return cmp_num(aseq, bseq)
end
local function field(flat, name)
  for i = 1, #flat, 2 do
    if flat[i] == name then return flat[i + 1] end
  end
  return nil
end
local function entries_of(reply)
  -- one stream's entries of an XREAD/XREADGROUP reply: {{key, entries}} from Redis,
  -- {key, entries} (or an empty table) from fakeredis
  if not reply or not reply[1] then return {} end
  if type(reply[1]) == 'table' then return reply[1][2] or {} end
  return reply[2] or {}
end
local function group_state(key, group)
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    if field(g, 'name') == group then return g end
  end
  return nil
end
"""

ENSURE_GROUP = (
    LUA_HELPERS
    + r"""
-- KEYS[1] stream; ARGV: group, start id ('$', '0-0' or an id), start kind, count budget.
-- Returns 0 when the group existed (nothing written), 1 when it was created.
local key, group, id, kind = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local budget = tonumber(ARGV[4])
local added, len, first, last = 0, 0, '0-0', '0-0'
if redis.call('EXISTS', key) == 1 then
  if redis.call('TYPE', key)['ok'] ~= 'stream' then
    return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
  end
  if group_state(key, group) then return 0 end
  local info = redis.call('XINFO', 'STREAM', key)
  added, len = field(info, 'entries-added') or 0, field(info, 'length')
  last = field(info, 'last-generated-id')
  local head = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)[1]
  if head then first = head[1] end
end
local read = false
if kind == 'newest' then
  read = added
elseif kind == 'oldest' then
  read = added - len
elseif cmp(id, last) >= 0 then
  read = added
elseif len > 0 and cmp(id, first) >= 0 then
  -- the entries kept up to the id are behind the group
  local behind, from = 0, '-'
  while true do
    local batch = redis.call('XRANGE', key, from, id, 'COUNT', 1000)
    behind = behind + #batch
    if #batch < 1000 then break end
    if behind > budget then behind = false break end
    from = '(' .. batch[#batch][1]
  end
  if behind then read = added - len + behind end
elseif added == len or kind == 'at' then
  -- nothing was trimmed, or a time start: what trimming took before it is not its loss
  read = added - len
end
-- otherwise a resume after an id trimming overtook: Redis cannot tell what came after it, and
-- the first read reports a loss of unknown size
if read then
  local created = redis.pcall('XGROUP', 'CREATE', key, group, id, 'MKSTREAM', 'ENTRIESREAD', read)
  if type(created) ~= 'table' or not created.err then return 1 end
  -- Redis before 7.0 has no ENTRIESREAD (and counts nothing a loss could be told from)
  if not string.find(string.lower(created.err), 'syntax', 1, true) then return created end
end
redis.call('XGROUP', 'CREATE', key, group, id, 'MKSTREAM')
return 1
"""
)

CHECK_GROUP = (
    LUA_HELPERS
    + r"""
-- KEYS[1] stream; ARGV: group, the last id this consumer read with '>' ('' if none). Run just
-- before a read of the group (pipelined with it): settles entries trimmed ahead of the group
-- and returns them as {after, before, count} (count -1: unknown), or false.
local key, group, floor = KEYS[1], ARGV[1], ARGV[2]
local head = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)[1]
if not head then return false end
-- The usual case, and the cheap one: the group has delivered at least up to this consumer's
-- last read, which is still kept, so nothing ahead of the group was trimmed.
if floor ~= '' and cmp(floor, head[1]) >= 0 then return false end
local state = group_state(key, group)
if not state then
  return redis.error_reply('NOGROUP No such key or consumer group ' .. group .. ' in XREADGROUP')
end
local last, read, lag = field(state, 'last-delivered-id'), field(state, 'entries-read'), field(state, 'lag')
if not lag or lag == 0 or cmp(last, head[1]) >= 0 then return false end
local len = redis.call('XLEN', key)
-- Everything between the group's position and the first kept entry was trimmed.
local gone = field(redis.call('XINFO', 'STREAM', key), 'entries-added') - len
local gap = false
if not read then
  if gone > 0 then gap = {last, head[1], -1} end
elseif gone > read then
  gap = {last, head[1], gone - read}
end
if not read or gone > read then
  redis.call('XGROUP', 'SETID', key, group, last, 'ENTRIESREAD', gone)
end
return gap
"""
)

CHECK_STREAM = (
    LUA_HELPERS
    + r"""
-- KEYS[1] stream; ARGV: cursor, '1' to always get the counts. Run just before a fan-out read
-- (pipelined with it): {entries-added, length, first kept id, last generated id} when entries
-- may have been trimmed ahead of the cursor (or when asked), else {false, false, first kept id}.
-- The last id tells which entries of the read were added after the counts were taken: in a
-- long pipeline other clients' commands may run between this script and the read.
local key, cursor, always = KEYS[1], ARGV[1], ARGV[2] == '1'
if redis.call('EXISTS', key) == 0 then return {0, 0, false, '0-0'} end
local head = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)[1]
if not always and (not head or cmp(cursor, head[1]) >= 0) then
  return {false, false, head and head[1] or false}
end
local info = redis.call('XINFO', 'STREAM', key)
return {field(info, 'entries-added'), field(info, 'length'), head and head[1] or false,
        field(info, 'last-generated-id')}
"""
)


@final
@attrs.frozen
class Script:
    """A Lua script run by its SHA (``EVALSHA``), falling back to its text when the server does
    not have it cached (``NOSCRIPT``, e.g. after a restart)."""

    text: str
    sha: str = attrs.field(init=False)

    @sha.default
    def _sha(self) -> str:
        return hashlib.sha1(self.text.encode()).hexdigest()

    def evalsha(self, keys: Sequence[str], args: Sequence[Any]) -> list[Any]:
        return ["EVALSHA", self.sha, len(keys), *keys, *args]

    def eval(self, keys: Sequence[str], args: Sequence[Any]) -> list[Any]:
        return ["EVAL", self.text, len(keys), *keys, *args]


def info_field(raw: Any, name: str, default: int) -> int:
    """An integer field of an ``XINFO STREAM`` reply (RESP2 flat list or RESP3 map)."""
    items = raw.items() if isinstance(raw, Mapping) else zip(raw[0::2], raw[1::2], strict=False)
    for key, value in items:
        if wire.text(key) == name:
            return int(value)
    return default


def id_key(entry_id: str) -> tuple[int, int]:
    """A stream id as a sortable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def group_gap(stream_id: str, raw: Any) -> Gap | None:
    """The gap a :data:`CHECK_GROUP` reply reports, if any."""
    if not raw:
        return None
    after, before, count = raw
    return Gap(
        stream_id=stream_id,
        after=wire.text(after) if after else None,
        before=wire.text(before) if before else None,
        count=None if int(count) < 0 else int(count),
    )


@final
class ReaderPosition:
    """A fan-out reader's place in its stream: its cursor and how many entries of the stream are
    behind it (None while not known: after a resume ``after(id)``, until it catches up or
    crosses trimmed entries).

    ``checked`` reads (preceded by :data:`CHECK_STREAM`) see the stream's counters and find
    losses; other reads only advance the position.
    """

    __slots__ = ("cursor", "pos", "resume")

    def __init__(
        self, cursor: str, pos: int | None, kind: Literal["newest", "oldest", "after", "at"]
    ) -> None:
        self.cursor = cursor
        self.pos = pos
        # Only a resume after(id) may have lost entries before it started; oldest and at(time)
        # start at the first entry kept.
        self.resume = kind == "after"

    def advanced(self, entry_ids: Sequence[str]) -> None:
        """A plain read returned these entries."""
        if entry_ids:
            self.cursor = entry_ids[-1]
            if self.pos is not None:
                self.pos += len(entry_ids)

    def checked(
        self,
        stream_id: str,
        entry_ids: Sequence[str],
        added: int,
        length: int,
        first: str | None,
        caught_up: bool,
    ) -> Gap | None:
        """A checked read returned ``entry_ids`` along with the stream's counters (read in the
        same atomic step); the loss found, if any."""
        gap: Gap | None = None
        cursor, pos = self.cursor, self.pos
        gone = added - length
        after = cursor if cursor != "0-0" else None
        if first is not None and id_key(cursor) < id_key(first):
            # Everything between the cursor and the first kept entry was trimmed.
            if pos is not None:
                if gone > pos:
                    gap = Gap(stream_id=stream_id, after=after, before=first, count=gone - pos)
            elif self.resume and gone > 0 and after is not None:
                gap = Gap(stream_id=stream_id, after=after, before=first, count=None)
            pos = gone
        elif first is None and pos is not None and added > pos:
            gap = Gap(stream_id=stream_id, after=after, before=None, count=added - pos)
            pos = added
        if pos is not None:
            pos += len(entry_ids)
        if caught_up:
            if pos is not None and pos < added and gap is None:
                gap = Gap(stream_id=stream_id, after=None, before=None, count=added - pos)
            pos = added
        self.pos = pos
        self.resume = False
        if entry_ids:
            self.cursor = entry_ids[-1]
        return gap
