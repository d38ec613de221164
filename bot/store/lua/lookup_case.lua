-- lookup_case.lua: the case a migrant typed the reference of (bot/store/cases.py).
--
-- KEYS[1] case record
-- ARGV[1] the caller's phone (E.164); compared here so it never leaves Redis
-- Returns false when there is no such case, else {reference, kind, status, 1|0}
local v = redis.call('HMGET', KEYS[1], 'reference', 'kind', 'status', 'phone')
if not v[1] then return false end
local is_callers = 0
if v[4] and v[4] ~= '' and v[4] == ARGV[1] then is_callers = 1 end
return {v[1], v[2], v[3], is_callers}
