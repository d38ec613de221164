-- claim_fallback.lua: claims the SMS that replaces a WhatsApp alert Twilio refused
-- (63016) for one recipient (bot/store/broadcasts.py; states: recipient_outcome.lua).
--
-- KEYS[1] the share's states (hash: pseudonym -> state)
-- ARGV[1] pseudonym  ARGV[2] job id  ARGV[3] its try number
-- A claim left by an earlier try of the same job is the caller's, uncertain (that try's
-- worker stopped, maybe after sending).
-- Returns {'claimed'} | {'uncertain', claimed ms} | {'busy'} | {'done', state}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HGET', KEYS[1], ARGV[1])
local holder = ARGV[2] .. '|' .. ARGV[3]
if state == 'r' then
  redis.call('HSET', KEYS[1], ARGV[1], 'R ' .. holder .. ' ' .. now)
  return {'claimed'}
end
if not state or string.sub(state, 1, 2) ~= 'R ' then return {'done', state or ''} end
local job, try, claimed = string.match(state, '^R (.*)|(%d+) (%d+)$')
if job ~= ARGV[2] or tonumber(try) > tonumber(ARGV[3]) then return {'busy'} end
if tonumber(try) == tonumber(ARGV[3]) then return {'uncertain', claimed} end
redis.call('HSET', KEYS[1], ARGV[1], 'R ' .. holder .. ' ' .. claimed)
return {'uncertain', claimed}
