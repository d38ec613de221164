-- count_in_window.lua: a counter over a time window (bot/store/counters.py).
--
-- KEYS[1] counter   ARGV[1] window (s)
-- Adds one; the window starts at the first count. Returns the count.
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
