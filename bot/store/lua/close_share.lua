-- close_share.lua: ends one shard's share of a broadcast (bot/store/broadcasts.py):
-- when it is all sent, or at once when the broadcast was cancelled.
--
-- KEYS[1] the share's counts and lease  KEYS[2] recipients to send to (list)
-- KEYS[3] recipients claimed (hash)  KEYS[4] the share's states (hash)
-- ARGV[1] 'done', 'cancel' or 'release'  ARGV[2] how long the states are kept (s; status
--         reports)  ARGV[3] the lease holder ('<job id>|<try>', '' for none) whose lease
--         ends here
-- 'done' closes only a share with nothing left to send or claimed; 'cancel' drops what
-- was not yet sent (its numbers with it) and marks the share cancelled for any sender;
-- 'release' only lets the lease go (the holder hands the share to the next run).
-- Returns 1 when the share is closed (or released), 0 when something is left to send.
local function release()
  local lease = redis.call('HGET', KEYS[1], 'lease')
  if lease and ARGV[3] ~= '' and string.sub(lease, 1, #ARGV[3] + 1) == ARGV[3] .. '|' then
    redis.call('HDEL', KEYS[1], 'lease')
  end
end
if ARGV[1] == 'release' then
  release()
  return 1
end
if ARGV[1] == 'cancel' then
  redis.call('HSET', KEYS[1], 'cancelled', '1')
  redis.call('DEL', KEYS[2])
elseif redis.call('LLEN', KEYS[2]) > 0 or redis.call('HLEN', KEYS[3]) > 0 then
  return 0
end
release()
redis.call('EXPIRE', KEYS[4], ARGV[2])
-- A cancelled share's claimed recipients (their numbers) go an hour later: long enough
-- for a send already handed to Twilio to be noted.
redis.call('EXPIRE', KEYS[3], ARGV[1] == 'cancel' and 3600 or ARGV[2])
return 1
