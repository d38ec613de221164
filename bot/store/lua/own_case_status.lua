-- own_case_status.lua: a status change a migrant makes to a case of their own
-- (bot/store/cases.py). The rule is the caller's (which kind, from which statuses, to
-- which); the script only checks it atomically.
--
-- KEYS[1] case record   KEYS[2] shard's audit stream   KEYS[3] case trail
-- KEYS[4] status index of the new status
-- KEYS[5..] status indexes of the statuses the change may start from
-- ARGV[1] the caller's phone   ARGV[2] now (ISO 8601)   ARGV[3] the kind it applies to
-- ARGV[4] the new status   ARGV[5] audit actor   ARGV[6] audit action
-- ARGV[7..] the statuses it may start from, as KEYS[5..]
-- Returns 1 when the status changed now, else 0 (not the caller's, other kind or status)
-- Appends one audit event to the shard's stream; `trail` (or false) gets its id.
local function audit(stream, trail, ref, actor, action, at, detail)
  local id = redis.call('XADD', stream, '*', 'reference', ref, 'actor', actor,
    'action', action, 'at', at, 'detail', detail)
  if trail then redis.call('APPEND', trail, id .. ' ') end
  return id
end
local v = redis.call('HMGET', KEYS[1], 'reference', 'kind', 'status', 'phone')
if not v[1] or v[2] ~= ARGV[3] or not v[4] or v[4] ~= ARGV[1] then return 0 end
local source_index = nil
for i = 7, #ARGV do
  if ARGV[i] == v[3] then source_index = KEYS[i - 2] end
end
if not source_index then return 0 end
local score = redis.call('ZSCORE', source_index, v[1])
redis.call('ZREM', source_index, v[1])
redis.call('ZADD', KEYS[4], score, v[1])
redis.call('HSET', KEYS[1], 'status', ARGV[4], 'updated_at', ARGV[2])
audit(KEYS[2], KEYS[3], v[1], ARGV[5], ARGV[6], ARGV[2],
  cjson.encode({from = v[3], to = ARGV[4]}))
return 1
