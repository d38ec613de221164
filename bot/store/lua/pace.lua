-- pace.lua: books a slot in the deployment's one outbound budget (bot/jobs/pace.py).
--
-- KEYS[1] the budget: the theoretical time of the next free slot, in microseconds
--         since the epoch (a string; `{pace}` tag: one slot, every worker shares it)
-- ARGV[1] microseconds between two messages (1e6 / HELPLINE_OUTBOUND_MPS)
-- ARGV[2] how far ahead of now the caller's lane may book, in microseconds: a
--         message to one migrant may book far ahead, a broadcast only a few slots,
--         so that the former always finds a slot before the bulk sends queued behind
-- Returns {1, wait, slot}: booked; send `wait` microseconds from now (the slot, in
--         microseconds since the epoch, as a string).
--         {0, wait, ''}: not booked (the lane may not book that far ahead); ask again
--         in `wait` microseconds.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local ahead = tonumber(ARGV[2])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
if next_free < now then next_free = now end
if next_free - now > ahead then
  return {0, next_free - now - ahead, ''}
end
local booked = next_free + interval
-- Kept a minute past the last booking: an idle budget leaves nothing behind.
redis.call('SET', KEYS[1], string.format('%.0f', booked), 'PX',
  math.floor((booked - now) / 1000) + 60000)
return {1, next_free - now, string.format('%.0f', next_free)}
