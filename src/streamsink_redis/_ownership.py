"""Claiming idle entries in a group shared with pulse sinks: whose entries may be taken, and
what their delivery count says.

**Ownership.** pulse sinks renew nothing: a live pulse consumer's entries go idle while it works,
and its own sink claims them from it after the grace period (pulse's visibility timeout). A
streamsink consumer leaves them alone while their owner is *live*: a consumer that is not a
streamsink consumer (not in streamsink's registry, :mod:`._keepalive`) and whose keep-alive is no
older than twice the grace period, pulse's own rule for deleting consumers. Entries of dead pulse
consumers (a stale keep-alive), of consumers nobody keeps alive, and of streamsink consumers are
claimed on idle time alone, as before. streamsink consumers renew their entries while they make
progress (``touch``), so theirs go idle only when they stop.

**Delivery counts.** Redis counts every delivery to any consumer of the group, pulse's own reads
and claims included. A pulse consumer that holds an entry for long has it claimed again every
grace period by its sink, and streamsink's dead-lettering would count those as failed attempts,
dead-lettering an entry on its first delivery to streamsink. So an entry taken over from a pulse
consumer (one with a keep-alive entry, stale or not) is claimed with ``RETRYCOUNT`` 2: whatever
pulse did with it counts as one earlier delivery, and streamsink's own deliveries count from
there, each one (and each further claim) adding one as usual. Entries of other owners keep the
count Redis kept. An entry that moves back and forth between pulse and streamsink consumers is
counted afresh at each move from pulse, and so is dead-lettered only after ``max_deliveries``
deliveries in a row to streamsink consumers.
"""

from __future__ import annotations

from typing import Any, Final

from . import _wire as wire
from ._positions import Script, id_key

__all__ = ["CLAIM", "claim_reply"]

CLAIM: Final = Script(
    r"""
-- KEYS: stream, keep-alive hash (map:sink:<group>:keepalive:content), registry hash.
-- ARGV: group, consumer, min idle ms, start ('-' or '(<id>'), count, now (unix us),
--       stale age (us): twice the grace period.
-- One XPENDING page of entries idle for min idle ms or more, from start; claims those whose owner
-- is not a live pulse consumer. Returns {next start ('0-0': the page was the last), claimed
-- entries, {id, delivery count, ...}}.
local key, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local now, stale = tonumber(ARGV[6]), tonumber(ARGV[7])
local rows = redis.call('XPENDING', key, group, 'IDLE', ARGV[3], ARGV[4], '+', ARGV[5])
local kinds = {}
local function kind_of(owner)
  if kinds[owner] then return kinds[owner] end
  local kind = 'own'
  if owner ~= consumer and redis.call('HEXISTS', KEYS[3], owner) == 0 then
    local alive = redis.call('HGET', KEYS[2], owner)
    if not alive then
      kind = 'own'  -- nobody keeps it alive: not pulse's, counted as Redis counts
    elseif string.match(alive, '^%d+$') and #alive > 3
        and now - tonumber(string.sub(alive, 1, -4)) <= stale then
      kind = 'live'  -- pulse's, alive by pulse's rule: left to it
    else
      kind = 'pulse'  -- pulse's, stale (or an unreadable keep-alive)
    end
  end
  kinds[owner] = kind
  return kind
end
local own, taken, counts = {}, {}, {}
for _, row in ipairs(rows) do
  local id, kind, delivered = row[1], kind_of(row[2]), tonumber(row[4])
  if kind == 'own' then
    own[#own + 1] = id
    counts[#counts + 1] = id
    counts[#counts + 1] = delivered + 1
  elseif kind == 'pulse' then
    taken[#taken + 1] = id
    counts[#counts + 1] = id
    counts[#counts + 1] = 2
  end
end
local claimed = {}
local function claim(ids)
  if #ids == 0 then return end
  -- entries deleted from the stream are dropped from the pending list and not returned (7.0)
  for _, entry in ipairs(redis.call('XCLAIM', key, group, consumer, ARGV[3], unpack(ids))) do
    if entry then claimed[#claimed + 1] = entry end
  end
end
claim(own)
if #taken > 0 then
  taken[#taken + 1] = 'RETRYCOUNT'  -- XCLAIM takes its options after the ids
  taken[#taken + 1] = '2'
  claim(taken)
end
local next_start = '0-0'
if #rows >= tonumber(ARGV[5]) then next_start = '(' .. rows[#rows][1] end
return {next_start, claimed, counts}
"""
)


def claim_reply(raw: Any) -> tuple[str, list[wire.RawEntry], dict[str, int]]:
    """``(next start, claimed entries in id order, {id: delivery count})`` of a :data:`CLAIM`
    reply."""
    next_start = wire.text(raw[0])
    claimed = sorted(wire.entries_of_read([(b"", raw[1])]), key=lambda entry: id_key(entry[0]))
    flat = list(raw[2] or ())
    counts = {wire.text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}
    return next_start, claimed, counts
