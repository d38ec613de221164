-- acknowledge_outbox.lua: acknowledges and deletes entries of a shard's outbox
-- (bot/store/outbox.py).
--
-- KEYS[1] a shard's outbox stream   ARGV[1] group   ARGV[2..] entry ids
-- Acknowledges and deletes the entries, together.
redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
return redis.call('XDEL', KEYS[1], unpack(ARGV, 2))
