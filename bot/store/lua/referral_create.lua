-- referral_create.lua: a referral of a case to a partner's system, in one step
-- (bot/store/referrals.py):
-- refused while the case is absent or erased, or while one of its referrals is open
-- (pending or sent: the partner must not get the case twice); else the referral, its
-- note, its audit event and the worker's outbox event are written together.
-- KEYS[1] case record   KEYS[2] case's referrals (hash: id -> JSON)
-- KEYS[3] case's referral notes (hash: id -> text)   KEYS[4] shard's audit stream
-- KEYS[5] case trail   KEYS[6] shard's outbox stream
-- ARGV[1] referral id   ARGV[2] referral record (JSON, its `status` among others)
-- ARGV[3] note ('' for none)   ARGV[4] at (ISO 8601)   ARGV[5] audit actor
-- ARGV[6] audit action   ARGV[7] audit detail (JSON)
-- ARGV[8] statuses that keep a referral open (JSON array)
-- Returns {'created'} | {'missing'} | {'erased'} | {'open', id, status}
local function audit(stream, trail, ref, actor, action, at, detail)
  local id = redis.call('XADD', stream, '*', 'reference', ref, 'actor', actor,
    'action', action, 'at', at, 'detail', detail)
  if trail then redis.call('APPEND', trail, id .. ' ') end
  return id
end

local case = redis.call('HMGET', KEYS[1], 'reference', 'erased_at', 'kind', 'priority',
  'channel', 'language', 'created_at')
if not case[1] then return {'missing'} end
if case[2] and case[2] ~= '' then return {'erased'} end
local open = {}
for _, status in ipairs(cjson.decode(ARGV[8])) do open[status] = true end
local existing = redis.call('HGETALL', KEYS[2])
for i = 2, #existing, 2 do
  local other = cjson.decode(existing[i])
  if open[other.status] then return {'open', existing[i - 1], other.status} end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[3], ARGV[1], ARGV[3]) end
audit(KEYS[4], KEYS[5], case[1], ARGV[5], ARGV[6], ARGV[4], ARGV[7])
redis.call('XADD', KEYS[6], '*', 'reference', case[1], 'kind', case[3], 'priority', case[4],
  'channel', case[5], 'language', case[6], 'created_at', case[7], 'referral', ARGV[1])
return {'created'}
