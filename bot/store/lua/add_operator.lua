-- add_operator.lua: adds an operator and its token's key (bot/store/operators.py).
--
-- KEYS[1] operators hash   KEYS[2] the new token's name key (both under {ops})
-- ARGV[1] name   ARGV[2] operator record (JSON)
-- Returns 1 when added, 0 when an active operator has that name.
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing and cjson.decode(existing)['revoked_at'] == cjson.null then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[1])
return 1
