"""The server-side half of a retried append: a Lua script that finds entries a lost attempt
already wrote (by their idempotency value) and appends only the others, and its reply.

Only a retry after an unknown outcome runs it; a first attempt is a plain ``XADD``. It touches
one key, so it runs on Redis Cluster as it does on one server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypeAlias, final

import attrs

__all__ = [
    "RESOLVE_APPEND",
    "SCAN_BUDGET",
    "Resolution",
    "Resolved",
    "resolve_args",
    "resolved",
]

SCAN_BUDGET = 10_000
"""Most entries one script reads while looking for its entries: a bound on how long it holds the
server (a few µs each; see ``python -m benchmarks.retry_path``). A window holding more entries
than this, or more than 64 MiB of them, ends the scan inconclusive: the outcome is reported
unknown. The script reads the stream in chunks of at most 512 entries and about 1 MiB."""

# The stream is scanned newest first, in chunks, down to a floor: a server time (ms) no later
# than when the first attempt was sent. An entry of the first attempt has an id at or above the
# floor, since XADD * never hands out an id below the server's clock. The floor is absolute, so
# a copy of this script that runs late (its connection stalled) still finds what an on-time copy
# appended: the script is itself safe to run twice. Not finding an entry proves it was not
# written only if nothing at or above the floor can have gone meanwhile: XINFO STREAM says so
# (nothing ever removed; or nothing deleted at or above the floor and the oldest entry still at
# or below it).
RESOLVE_APPEND = r"""
local CHUNK_BYTES, MAX_CHUNK, MAX_BYTES = 1048576, 512, 67108864
local key = KEYS[1]
local maxlen = tonumber(ARGV[1])
local floor = ARGV[2] .. '-0'
local budget = tonumber(ARGV[3])
local count = tonumber(ARGV[4])

local function id_parts(id)
  local dash = string.find(id, '-', 1, true)
  if not dash then return tonumber(id), 0 end
  return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
end
local function id_less(a, b)
  local ams, aseq = id_parts(a)
  local bms, bseq = id_parts(b)
  return ams < bms or (ams == bms and aseq < bseq)
end

local entries = {}
local wanted = {}
local at = 5
for index = 1, count do
  local nargs = tonumber(ARGV[at + 1])
  entries[index] = {first = at + 2, last = at + 1 + nargs}
  wanted[ARGV[at]] = index
  at = at + 2 + nargs
end

local found = {}
local missing = count
local scanned = 0
local bytes = 0
local reason = ''
if redis.call('EXISTS', key) == 1 then
  local reached = false
  local cursor = '+'
  -- Chunks start small (the entries looked for are usually among the newest) and grow, each
  -- to about CHUNK_BYTES of entries at most, so large entries are read a few at a time.
  local chunk = 4
  while missing > 0 do
    local take = math.min(chunk, budget - scanned)
    if take <= 0 or bytes >= MAX_BYTES then break end
    local batch = redis.call('XREVRANGE', key, cursor, floor, 'COUNT', take)
    local size = 0
    for _, item in ipairs(batch) do
      scanned = scanned + 1
      local fields = item[2]
      -- The idempotency field is written last: look from the end.
      local seen = false
      for f = #fields - 1, 1, -2 do
        size = size + #fields[f + 1]
        if not seen and fields[f] == 'i' then
          seen = true
          local index = wanted[fields[f + 1]]
          if index and not found[index] then
            found[index] = item[1]
            missing = missing - 1
          end
        end
      end
    end
    bytes = bytes + size
    if #batch < take then
      reached = true
      break
    end
    cursor = '(' .. batch[#batch][1]
    local fit = math.floor(CHUNK_BYTES * #batch / math.max(size, 1))
    chunk = math.max(1, math.min(MAX_CHUNK, chunk * 4, fit))
  end
  if missing > 0 then
    if not reached then
      reason = string.format(
        'scanned %d entries (%d bytes) without reaching the time of the lost attempt',
        scanned, bytes)
    else
      local info = redis.call('XINFO', 'STREAM', key)
      local fields = {}
      for f = 1, #info, 2 do fields[info[f]] = info[f + 1] end
      local length = tonumber(fields['length'])
      local added = tonumber(fields['entries-added'])
      if added == nil or added ~= length then
        local deleted = fields['max-deleted-entry-id']
        local first = fields['recorded-first-entry-id']
        if first == nil and fields['first-entry'] then first = fields['first-entry'][1] end
        if deleted ~= nil and not id_less(deleted, floor) then
          reason = 'entries at or after the time of the lost attempt were deleted (XDEL)'
        elseif length == 0 then
          if not id_less(fields['last-generated-id'], floor) then
            reason = 'the stream was trimmed empty since the lost attempt'
          end
        elseif first == nil or id_less(floor, first) then
          reason = 'the stream was trimmed past the time of the lost attempt'
        end
      end
    end
  end
end

local reply = {scanned, reason}
local last_found = 0
for index = 1, count do
  if found[index] then last_found = index end
end
for index = 1, count do
  local entry = entries[index]
  if found[index] then
    table.insert(reply, 'found')
    table.insert(reply, found[index])
  elseif reason ~= '' then
    table.insert(reply, 'unknown')
    table.insert(reply, reason)
  elseif index < last_found then
    -- Written again now, it would land after a later entry of its own batch.
    table.insert(reply, 'unknown')
    table.insert(reply, 'a later entry of the same batch was written but this one was not')
  else
    local added
    if maxlen > 0 then
      added = redis.pcall('XADD', key, 'MAXLEN', '~', maxlen, '*', unpack(ARGV, entry.first, entry.last))
    else
      added = redis.pcall('XADD', key, '*', unpack(ARGV, entry.first, entry.last))
    end
    if type(added) == 'table' and added.err then
      table.insert(reply, 'error')
      table.insert(reply, added.err)
    else
      table.insert(reply, 'added')
      table.insert(reply, added)
    end
  end
end
return reply
"""

Outcome: TypeAlias = Literal["found", "added", "error", "unknown"]


@final
@attrs.frozen
class Resolved:
    """What the script did with one entry: ``found`` (already written; ``value`` is its id),
    ``added`` (written now; its new id), ``error`` (Redis refused the XADD; the message) or
    ``unknown`` (not found, and not provably unwritten; why)."""

    outcome: Outcome
    value: str


@final
@attrs.frozen
class Resolution:
    """A script's reply: one :class:`Resolved` per entry, in order, and how many entries the
    scan read."""

    entries: tuple[Resolved, ...]
    scanned: int


def resolve_args(
    key: str,
    entries: Sequence[tuple[bytes, Sequence[Any]]],
    *,
    maxlen: int,
    floor_ms: int,
    budget: int = SCAN_BUDGET,
) -> list[Any]:
    """``EVAL`` arguments resolving ``entries`` (idempotency value, XADD field arguments) on
    the stream ``key``, in order, looking for them at or after the server time ``floor_ms``."""
    args: list[Any] = [
        "EVAL", RESOLVE_APPEND, 1, key, maxlen, max(0, floor_ms), budget, len(entries)
    ]  # fmt: skip
    for value, fields in entries:
        args += [value, len(fields), *fields]
    return args


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def resolved(reply: Any, count: int) -> Resolution:
    """Parse the script's reply for ``count`` entries.

    :raises ValueError: a reply of another shape (not this script's).
    """
    items = list(reply) if isinstance(reply, list | tuple) else []
    if len(items) != 2 + 2 * count:
        raise ValueError(f"unexpected reply to the append script: {reply!r:.200}")
    entries = []
    for outcome, value in zip(items[2::2], items[3::2], strict=True):
        name = _text(outcome)
        if name not in ("found", "added", "error", "unknown"):
            raise ValueError(f"unexpected outcome {name!r} from the append script")
        entries.append(Resolved(name, _text(value)))  # type: ignore[arg-type]
    return Resolution(tuple(entries), int(items[0]))
