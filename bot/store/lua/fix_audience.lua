-- fix_audience.lua: fixes one shard's share of a broadcast's audience at its approval,
-- a chunk of the shard's subscriptions a call (bot/store/broadcasts.py).
--
-- KEYS[1] the shard's subscriptions (hash: pseudonym -> record, see subscribe.lua)
-- KEYS[2] the share's states (hash: pseudonym -> 'q' queued, ...)
-- KEYS[3] the share's recipients to send to (list of '<pseudonym> <language> <channel>
--         <phone>')
-- KEYS[4] the share's counts (hash: queued, ...; cursor and fixed while fixing)
-- ARGV[1] subscriptions read a call  ARGV[2] countries (' NE ML ', '' for all)
-- ARGV[3] languages (' fr bm ', '' for all)
-- Resumes where the last call stopped (a retried approval adds nobody twice: a phone
-- is queued once, HSETNX).
-- Returns {1 when the share is complete, recipients added by this call}.
if redis.call('HGET', KEYS[4], 'fixed') == '1' then return {1, 0} end
local cursor = redis.call('HGET', KEYS[4], 'cursor') or '0'
local found = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', ARGV[1])
local entries, added = found[2], 0
for i = 1, #entries, 2 do
  local pseudonym = entries[i]
  local country, language, channel, phone = string.match(entries[i + 1],
    '^(%S+) (%S+) (%S+) %S+ %S+ (%S+)$')
  if country
      and (ARGV[2] == '' or string.find(ARGV[2], ' ' .. country .. ' ', 1, true))
      and (ARGV[3] == '' or string.find(ARGV[3], ' ' .. language .. ' ', 1, true))
      and redis.call('HSETNX', KEYS[2], pseudonym, 'q') == 1 then
    redis.call('RPUSH', KEYS[3], pseudonym .. ' ' .. language .. ' ' .. channel .. ' ' .. phone)
    added = added + 1
  end
end
redis.call('HINCRBY', KEYS[4], 'queued', added)
if found[1] == '0' then
  redis.call('HSET', KEYS[4], 'fixed', '1')
  redis.call('HDEL', KEYS[4], 'cursor')
  return {1, added}
end
redis.call('HSET', KEYS[4], 'cursor', found[1])
return {0, added}
