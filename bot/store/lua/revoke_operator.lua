-- revoke_operator.lua: revokes an operator; the last active holder of a role stays
-- (bot/store/operators.py).
--
-- KEYS[1] operators hash   KEYS[2] the operator's token key
-- ARGV[1] name   ARGV[2] the record as read (JSON)   ARGV[3] the revoked record (JSON)
-- ARGV[4] a role that must keep an active holder
-- Returns 1 when revoked, 0 when the record changed since it was read, -1 when it is
-- the last active holder of ARGV[4].
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
local target = cjson.decode(ARGV[2])
if target['role'] == ARGV[4] then
  local holders = 0
  for _, raw in ipairs(redis.call('HVALS', KEYS[1])) do
    local operator = cjson.decode(raw)
    if operator['role'] == ARGV[4] and operator['revoked_at'] == cjson.null then
      holders = holders + 1
    end
  end
  if holders <= 1 then return -1 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('DEL', KEYS[2])
return 1
