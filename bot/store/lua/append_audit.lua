-- append_audit.lua: one audit event, listed on its case's trail when there is a case
-- (bot/store/audit.py).
--
-- KEYS[1] shard's audit stream   KEYS[2] case record   KEYS[3] case trail
-- (KEYS[2] and KEYS[3] are ignored when ARGV[1] is '')
-- ARGV[1] reference ('' for an event about no case)   ARGV[2] actor   ARGV[3] action
-- ARGV[4] at (ISO 8601)   ARGV[5] detail (JSON)
-- Returns the event's id.
-- Appends one audit event to the shard's stream; `trail` (or false) gets its id.
local function audit(stream, trail, ref, actor, action, at, detail)
  local id = redis.call('XADD', stream, '*', 'reference', ref, 'actor', actor,
    'action', action, 'at', at, 'detail', detail)
  if trail then redis.call('APPEND', trail, id .. ' ') end
  return id
end
local trail = false
if ARGV[1] ~= '' and redis.call('EXISTS', KEYS[2]) == 1 then trail = KEYS[3] end
return audit(KEYS[1], trail, ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
