-- promote_jobs.lua: moves the due delayed jobs into the job stream (bot/jobs/broker.py).
--
-- KEYS[1] stream  KEYS[2] delayed set  ARGV[1] most jobs to move
-- Moves the due jobs into the stream; returns {moved, ms until the next is due or -1}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, message in ipairs(due) do
  redis.call('XADD', KEYS[1], '*', 'data', message)
  redis.call('ZREM', KEYS[2], message)
end
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if first[2] then return {#due, math.max(0, tonumber(first[2]) - now)} end
return {#due, -1}
