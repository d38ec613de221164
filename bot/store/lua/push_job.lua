-- push_job.lua: queues a job, at once or delayed, once per window if asked
-- (bot/jobs/broker.py).
--
-- KEYS[1] stream  KEYS[2] delayed set  KEYS[3] once-only mark (KEYS[1] when none)
-- ARGV[1] message  ARGV[2] delay (ms)  ARGV[3] once-only window (ms, 0: none)
-- Returns 1 when queued, 0 when a job of that id was queued within the window.
if ARGV[3] ~= '0' and not redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[3]) then
  return 0
end
if tonumber(ARGV[2]) > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
else
  redis.call('XADD', KEYS[1], '*', 'data', ARGV[1])
end
return 1
