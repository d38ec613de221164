-- newest_case_of_phone.lua: a phone's newest case of a kind in some statuses
-- (bot/store/cases.py).
--
-- KEYS[1] the phone's cases-by-phone set in its own shard
-- ARGV[1] that shard's case record key prefix (records found through the set: same slot)
-- ARGV[2] kind   ARGV[3..] the statuses wanted (the caller says which count as open)
-- Returns {reference, status} of the phone's newest case of that kind in one of those
-- statuses, or false.
local open = {}
for i = 3, #ARGV do open[ARGV[i]] = true end
local best, best_status, best_at = false, false, ''
for _, ref in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local v = redis.call('HMGET', ARGV[1] .. ref, 'kind', 'status', 'created_at')
  if v[1] == ARGV[2] and open[v[2]] and (v[3] or '') >= best_at then
    best, best_status, best_at = ref, v[2], v[3] or ''
  end
end
if not best then return false end
return {best, best_status}
