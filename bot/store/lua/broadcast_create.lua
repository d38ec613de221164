-- broadcast_create.lua: records a new broadcast and its audit event
-- (bot/store/broadcasts.py).
--
-- KEYS[1] the broadcast's record  KEYS[2] the list of broadcasts (zset, scored by id)
-- KEYS[3] the broadcasts' audit stream
-- ARGV[1] id  ARGV[2] its score (the id: ids grow)  ARGV[3] actor  ARGV[4] time (ISO 8601)
-- ARGV[5] audit detail (JSON)  ARGV[6..] the record's fields and values, in pairs
-- Returns 1.
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('XADD', KEYS[3], '*', 'reference', '', 'actor', ARGV[3], 'action', 'created',
  'at', ARGV[4], 'detail', ARGV[5])
return 1
