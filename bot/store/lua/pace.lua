-- pace.lua: books a slot in the deployment's one outbound budget (bot/jobs/pace.py).
--
-- KEYS[1] the budget: the theoretical time of the next free slot, in microseconds
--         since the epoch (a string; `{pace}` tag: one slot, every worker shares it)
-- ARGV[1] microseconds between two messages (1e6 / HELPLINE_OUTBOUND_MPS)
-- ARGV[2] how far ahead of now the caller's lane may book, in microseconds: a
--         message to one migrant may book far ahead, a broadcast only a few slots,
--         so that the former always finds a slot before the bulk sends queued behind
-- ARGV[3] slots wanted (at most; as many as fit within ARGV[2])
-- Returns {n, wait, slot...}: n slots booked (n >= 1); the first `wait` microseconds
--         from now; each slot in microseconds since the epoch, as a string.
--         {0, wait}: none booked (the lane may not book that far ahead); ask again
--         in `wait` microseconds.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local ahead = tonumber(ARGV[2])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
if next_free < now then next_free = now end
if next_free - now > ahead then
  return {0, next_free - now - ahead}
end
local out = {0, next_free - now}
local wanted = tonumber(ARGV[3])
while out[1] < wanted and next_free - now <= ahead do
  out[#out + 1] = string.format('%.0f', next_free)
  out[1] = out[1] + 1
  next_free = next_free + interval
end
-- Kept a minute past the last booking: an idle budget leaves nothing behind.
redis.call('SET', KEYS[1], string.format('%.0f', next_free), 'PX',
  math.floor((next_free - now) / 1000) + 60000)
return out
