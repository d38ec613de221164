-- read_case.lua: a case's record, journal and answers, the read audited
-- (bot/store/case_queries.py).
--
-- KEYS[1] case record   KEYS[2] case journal (notes)   KEYS[3] shard's audit stream
-- KEYS[4] case answers   KEYS[5] case trail
-- ARGV[1] reader (actor)   ARGV[2] now (ISO 8601)   ARGV[3] the case's reference
-- ARGV[4] audit action
-- Returns false when there is no such case, else {record (flat), journal entries,
-- answers (JSON) or false}.
-- Reading personal data is audited in the same step as the read itself.
-- Appends one audit event to the shard's stream; `trail` (or false) gets its id.
local function audit(stream, trail, ref, actor, action, at, detail)
  local id = redis.call('XADD', stream, '*', 'reference', ref, 'actor', actor,
    'action', action, 'at', at, 'detail', detail)
  if trail then redis.call('APPEND', trail, id .. ' ') end
  return id
end
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
audit(KEYS[3], KEYS[5], ARGV[3], ARGV[1], ARGV[4], ARGV[2], '{}')
return {redis.call('HGETALL', KEYS[1]), redis.call('LRANGE', KEYS[2], 0, -1),
  redis.call('GET', KEYS[4])}
