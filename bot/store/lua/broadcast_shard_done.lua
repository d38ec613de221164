-- broadcast_shard_done.lua: notes one shard's share of a broadcast sent; the last one
-- ends the broadcast (bot/store/broadcasts.py).
--
-- KEYS[1] the broadcast's record  KEYS[2] its set of shards done
-- KEYS[3] the set of active broadcasts  KEYS[4] the broadcasts' audit stream
-- ARGV[1] id  ARGV[2] shard  ARGV[3] number of shards  ARGV[4] actor
-- ARGV[5] time (ISO 8601)  ARGV[6] audit detail (JSON)
-- Returns the broadcast's status afterwards.
redis.call('SADD', KEYS[2], ARGV[2])
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'sending' and redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  status = 'done'
  redis.call('HSET', KEYS[1], 'status', status, 'finished_at', ARGV[5])
  redis.call('SREM', KEYS[3], ARGV[1])
  redis.call('XADD', KEYS[4], '*', 'reference', '', 'actor', ARGV[4], 'action', 'done',
    'at', ARGV[5], 'detail', ARGV[6])
end
return status or ''
