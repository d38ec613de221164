-- erase_case.lua: erases a case's personal fields, audited in the same step
-- (bot/store/erasure.py).
--
-- KEYS[1] case record   KEYS[2] shard's audit stream   KEYS[3] case trail
-- KEYS[4] cases-by-phone set of the case's phone
-- KEYS[5..] keys beside the record that the erasure deletes (answers, journal)
-- ARGV[1] actor   ARGV[2] now (ISO 8601)   ARGV[3] audit action
-- ARGV[4..] record fields to delete
-- Returns 1 when the case was erased now, 0 when absent or erased already
-- Appends one audit event to the shard's stream; `trail` (or false) gets its id.
local function audit(stream, trail, ref, actor, action, at, detail)
  local id = redis.call('XADD', stream, '*', 'reference', ref, 'actor', actor,
    'action', action, 'at', at, 'detail', detail)
  if trail then redis.call('APPEND', trail, id .. ' ') end
  return id
end
local v = redis.call('HMGET', KEYS[1], 'reference', 'erased_at')
if not v[1] or (v[2] and v[2] ~= '') then return 0 end
for i = 4, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
redis.call('HSET', KEYS[1], 'erased_at', ARGV[2], 'updated_at', ARGV[2])
for i = 5, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('SREM', KEYS[4], v[1])
audit(KEYS[2], KEYS[3], v[1], ARGV[1], ARGV[3], ARGV[2], '{}')
return 1
