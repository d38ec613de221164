-- release_lease.lua: gives a phone's lease back after a step that failed half-way
-- (bot/store/sessions.py).
--
-- KEYS[1] lease  KEYS[2] abandoned mark of the token
-- ARGV[1] lease token  ARGV[2] lease duration (ms)
-- After a step that failed half-way: releases the lease if ours, else marks the token
-- abandoned so that its BEGIN, should a slow Redis run it later, takes nothing.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 0
