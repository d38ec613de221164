-- take_sid.lua: after an uncertain attempt, takes a message's (or call's) SID for a
-- delivery unless another delivery has it (bot/store/deliveries.py, `take_sid`).
--
-- KEYS[1] the SID's look-up key (the delivery it belongs to, JSON)
-- ARGV[1] this delivery's look-up value (JSON)   ARGV[2] this delivery's id
-- ARGV[3] look-up TTL (seconds)
-- Returns 1 when the SID is now (or was already) this delivery's, 0 when another's.
local before = redis.call('GET', KEYS[1])
if not before then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
  return 1
end
if cjson.decode(before)['delivery'] == ARGV[2] then return 1 end
return 0
