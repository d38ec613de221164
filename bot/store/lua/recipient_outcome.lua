-- recipient_outcome.lua: what became of one recipient of a broadcast: the worker's
-- send, or a status Twilio reported (bot/store/broadcasts.py).
--
-- KEYS[1] the share's counts and lease (hash)  KEYS[2] recipients claimed (hash)
-- KEYS[3] the share's states (hash: pseudonym -> state)
-- ARGV[1] pseudonym  ARGV[2] 'sent' (by the worker) or 'status' (Twilio's report)
-- ARGV[3] for 'sent': 's' (SMS), 'w' (WhatsApp), 'f' (refused), 'k' (skipped);
--         for 'status': 'd' (delivered or read), 'f' (failed or undelivered),
--         'x' (WhatsApp refused it outside its window: Twilio's 63016)
-- ARGV[4] for 'sent': the lease to renew ('<job id>|<try>'), if still ours; ARGV[5] its ms
-- States: q queued, c claimed (c<letter>: a status arrived before the send was noted),
-- s sent by SMS, w sent on WhatsApp, r to send again by SMS (after 63016), 'R <holder>
-- <ms>' that SMS claimed, d delivered, f failed, k skipped. Counts move with them: queued, sent (s, w,
-- r, R), delivered, failed, skipped.
-- Returns the new state, or '' when nothing changed; 'r' asks for the SMS fallback.
local function move(from, to)
  if from then redis.call('HINCRBY', KEYS[1], from, -1) end
  if to then redis.call('HINCRBY', KEYS[1], to, 1) end
end
local function reported(state, letter)
  -- a sent message's report; returns the new state or false
  if state ~= 's' and state ~= 'w' then return false end
  if letter == 'd' then
    move('sent', 'delivered')
    return 'd'
  end
  if letter == 'x' and state == 'w' then return 'r' end
  move('sent', 'failed')
  return 'f'
end
local pseudonym, what, letter = ARGV[1], ARGV[2], ARGV[3]
local state = redis.call('HGET', KEYS[3], pseudonym)
if not state then return '' end
local fallback = string.sub(state, 1, 1) == 'R'
if what == 'sent' then
  if redis.call('HDEL', KEYS[2], pseudonym) == 0 and not fallback then return '' end
  local lease = redis.call('HGET', KEYS[1], 'lease')
  if lease and ARGV[4] ~= '' and string.sub(lease, 1, #ARGV[4] + 1) == ARGV[4] .. '|' then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    redis.call('HSET', KEYS[1], 'lease', ARGV[4] .. '|' .. (now + tonumber(ARGV[5])))
  end
  local new
  if fallback then
    -- the SMS sent instead of a refused WhatsApp message: counted as sent already
    if letter == 'f' then move('sent', 'failed') end
    new = (letter == 'f') and 'f' or 's'
  else
    local early = string.sub(state, 2)
    if letter == 's' or letter == 'w' then
      move('queued', 'sent')
      new = letter
      if early ~= '' then new = reported(letter, early) or new end
    elseif letter == 'f' then
      move('queued', 'failed')
      new = 'f'
    else
      move('queued', 'skipped')
      new = 'k'
    end
  end
  redis.call('HSET', KEYS[3], pseudonym, new)
  return new
end
-- a status report
if string.sub(state, 1, 1) == 'c' then
  redis.call('HSET', KEYS[3], pseudonym, 'c' .. letter)  -- noted once the send is
  return ''
end
local new = reported(state, letter)
if not new then return '' end
redis.call('HSET', KEYS[3], pseudonym, new)
return new
