-- case_events.lua: a case's audit events, read through its trail (bot/store/audit.py).
--
-- KEYS[1] case record   KEYS[2] shard's audit stream   KEYS[3] case trail
-- Returns false when there is no such case, else the case's events {id, fields}, oldest first.
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local ids = redis.call('GET', KEYS[3]) or ''
local out = {}
for id in string.gmatch(ids, '%S+') do
  local found = redis.call('XRANGE', KEYS[2], id, id)
  if found[1] then out[#out + 1] = found[1] end
end
return out
