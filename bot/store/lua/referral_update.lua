-- referral_update.lua: the worker records what became of a referral
-- (bot/store/referrals.py): its fields
-- change only from the statuses the caller names (a late run never turns `sent` back),
-- with the audit event of the change in the same step.
-- KEYS[1] case's referrals (hash: id -> JSON)   KEYS[2] shard's audit stream
-- KEYS[3] case record   KEYS[4] case trail
-- ARGV[1] referral id   ARGV[2] fields to set (JSON object)
-- ARGV[3] statuses it may change from (JSON array)   ARGV[4] audit actor
-- ARGV[5] audit action ('' for no event)   ARGV[6] at (ISO 8601)   ARGV[7] audit detail (JSON)
-- ARGV[8] the case's reference
-- Returns the referral's JSON after the change, or {status} when its status was not one
-- of ARGV[3] (nothing written), or false when there is no such referral.
local function audit(stream, trail, ref, actor, action, at, detail)
  local id = redis.call('XADD', stream, '*', 'reference', ref, 'actor', actor,
    'action', action, 'at', at, 'detail', detail)
  if trail then redis.call('APPEND', trail, id .. ' ') end
  return id
end

local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
local referral = cjson.decode(raw)
local allowed = false
for _, status in ipairs(cjson.decode(ARGV[3])) do
  if referral.status == status then allowed = true end
end
if not allowed then return {referral.status} end
for field, value in pairs(cjson.decode(ARGV[2])) do referral[field] = value end
local after = cjson.encode(referral)
redis.call('HSET', KEYS[1], ARGV[1], after)
if ARGV[5] ~= '' then
  local trail = false
  if redis.call('EXISTS', KEYS[3]) == 1 then trail = KEYS[4] end
  audit(KEYS[2], trail, ARGV[8], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
end
return after
