-- read_outbox.lua: a worker's read of one shard's outbox (bot/store/outbox.py).
--
-- KEYS[1] a shard's outbox stream
-- ARGV[1] group   ARGV[2] consumer   ARGV[3] count   ARGV[4] claim idle (ms)
-- Makes the group (and the stream) if Redis lost them, then returns
-- {entries taken over from idle consumers, new entries}, each {id, {field, value...}}
-- (a taken-over entry deleted meanwhile comes as {id, false}).
local ok = pcall(redis.call, 'XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[4], '0-0',
  'COUNT', ARGV[3])
local fresh = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3],
  'STREAMS', KEYS[1], '>')
local entries = {}
if fresh and fresh[1] then entries = fresh[1][2] end
return {claimed[2], entries}
