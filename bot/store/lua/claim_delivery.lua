-- claim_delivery.lua: claims an outbound delivery before the worker calls out
-- (bot/store/deliveries.py).
--
-- KEYS[1] delivery record
-- ARGV[1] job id   ARGV[2] job try   ARGV[3] now (epoch seconds)   ARGV[4] lease (seconds)
-- ARGV[5] reference   ARGV[6] purpose   ARGV[7] record TTL (seconds)
-- Returns {'done', state} | {'busy', ''} | {'claimed', attempt} | {'uncertain', attempt, since}
-- where `since` is the epoch second the first uncertain attempt started.
local v = redis.call('HMGET', KEYS[1], 'state', 'job', 'job_try', 'claimed_at', 'attempts',
  'uncertain_since')
local state, attempts = v[1], tonumber(v[5] or '0')
if state == 'sent' or state == 'failed' or state == 'skipped' then return {'done', state} end
local outcome = 'claimed'
if state == 'sending' then
  local earlier_try = v[2] == ARGV[1] and tonumber(v[3]) < tonumber(ARGV[2])
  local lease_over = tonumber(v[4]) + tonumber(ARGV[4]) <= tonumber(ARGV[3])
  if not earlier_try and not lease_over then return {'busy', ''} end
  outcome = 'uncertain'
elseif state == 'unknown' then
  outcome = 'uncertain'
end
local since = v[6] or ''
if outcome == 'uncertain' and since == '' then
  since = v[4]
  redis.call('HSET', KEYS[1], 'uncertain_since', since)
end
redis.call('HSET', KEYS[1], 'state', 'sending', 'job', ARGV[1], 'job_try', ARGV[2],
  'claimed_at', ARGV[3], 'attempts', attempts + 1, 'reference', ARGV[5], 'purpose', ARGV[6])
redis.call('EXPIRE', KEYS[1], ARGV[7])
return {outcome, tostring(attempts + 1), since}
