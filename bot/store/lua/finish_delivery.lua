-- finish_delivery.lua: a delivery attempt's outcome, audited on its case
-- (bot/store/deliveries.py).
--
-- KEYS[1] delivery record   KEYS[2] shard's audit stream   KEYS[3] case record
-- KEYS[4] case trail
-- ARGV[1] record fields (JSON object)   ARGV[2] record TTL (s)   ARGV[3] reference
-- ARGV[4] actor   ARGV[5] action   ARGV[6] at (ISO 8601)   ARGV[7] audit detail (JSON)
-- Appends one audit event to the shard's stream; `trail` (or false) gets its id.
local function audit(stream, trail, ref, actor, action, at, detail)
  local id = redis.call('XADD', stream, '*', 'reference', ref, 'actor', actor,
    'action', action, 'at', at, 'detail', detail)
  if trail then redis.call('APPEND', trail, id .. ' ') end
  return id
end
local fields = {}
for field, value in pairs(cjson.decode(ARGV[1])) do
  fields[#fields + 1] = field
  fields[#fields + 1] = value
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('EXPIRE', KEYS[1], ARGV[2])
local trail = false
if redis.call('EXISTS', KEYS[3]) == 1 then trail = KEYS[4] end
audit(KEYS[2], trail, ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
return 1
