-- record_status.lua: a Twilio status callback recorded on its delivery, audited once
-- (bot/store/deliveries.py).
--
-- KEYS[1] delivery record   KEYS[2] shard's audit stream   KEYS[3] case record
-- KEYS[4] case trail
-- ARGV[1] Twilio status   ARGV[2] its rank   ARGV[3] error code ('' if none)
-- ARGV[4] now (ISO 8601)  ARGV[5] audit detail (JSON)   ARGV[6] reference
-- ARGV[7] audit actor   ARGV[8] audit action
-- Returns {1|0 (recorded now or seen before), phone pseudonym or ''}
-- Appends one audit event to the shard's stream; `trail` (or false) gets its id.
local function audit(stream, trail, ref, actor, action, at, detail)
  local id = redis.call('XADD', stream, '*', 'reference', ref, 'actor', actor,
    'action', action, 'at', at, 'detail', detail)
  if trail then redis.call('APPEND', trail, id .. ' ') end
  return id
end
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, ''} end
local v = redis.call('HMGET', KEYS[1], 'statuses', 'status_rank', 'phone_pseudonym')
local seen = v[1] or ''
if string.find(',' .. seen .. ',', ',' .. ARGV[1] .. ',', 1, true) then
  return {0, v[3] or ''}
end
if seen == '' then seen = ARGV[1] else seen = seen .. ',' .. ARGV[1] end
redis.call('HSET', KEYS[1], 'statuses', seen)
if tonumber(ARGV[2]) >= tonumber(v[2] or '-1') then
  redis.call('HSET', KEYS[1], 'twilio_status', ARGV[1], 'status_rank', ARGV[2],
    'error_code', ARGV[3])
end
local trail = false
if redis.call('EXISTS', KEYS[3]) == 1 then trail = KEYS[4] end
audit(KEYS[2], trail, ARGV[6], ARGV[7], ARGV[8], ARGV[4], ARGV[5])
return {1, v[3] or ''}
