-- subscribe.lua: starts, changes or ends one phone's alert subscription
-- (bot/store/subscriptions.py), keeping the shard's audience counts in step.
--
-- KEYS[1] the shard's subscriptions (hash: pseudonym -> record)
-- KEYS[2] the shard's counts (hash: '<country> <language>' -> subscriptions)
-- ARGV[1] pseudonym
-- ARGV[2] the new record ('<country> <language> <channel> <since> <version> <phone>'),
--         or '' to end the subscription
-- Returns 1 when the phone had a subscription before, else 0.
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local country, language = string.match(old, '^(%S+) (%S+) ')
  if country and redis.call('HINCRBY', KEYS[2], country .. ' ' .. language, -1) <= 0 then
    redis.call('HDEL', KEYS[2], country .. ' ' .. language)
  end
end
if ARGV[2] == '' then
  if old then redis.call('HDEL', KEYS[1], ARGV[1]) end
else
  local country, language = string.match(ARGV[2], '^(%S+) (%S+) ')
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('HINCRBY', KEYS[2], country .. ' ' .. language, 1)
end
if old then return 1 end
return 0
