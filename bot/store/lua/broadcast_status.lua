-- broadcast_status.lua: moves a broadcast from one status to the next, audited
-- (bot/store/broadcasts.py; which moves are allowed is bot/outreach/broadcasts.py's).
--
-- KEYS[1] the broadcast's record  KEYS[2] the set of active broadcasts
-- KEYS[3] the broadcasts' audit stream
-- ARGV[1] id  ARGV[2] the statuses it may move from (' a b ')  ARGV[3] the status to
-- ARGV[4] '+' to add it to the active set, '-' to take it out, '' neither
-- ARGV[5] actor  ARGV[6] time (ISO 8601)  ARGV[7] audit action ('' for none)
-- ARGV[8] audit detail (JSON)  ARGV[9..] more fields of the record to set, in pairs
-- Returns {'ok', status before} or {'conflict', status now} or {'missing', ''}.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', ''} end
if not string.find(ARGV[2], ' ' .. status .. ' ', 1, true) then
  return {'conflict', status}
end
redis.call('HSET', KEYS[1], 'status', ARGV[3])
if #ARGV > 8 then redis.call('HSET', KEYS[1], unpack(ARGV, 9)) end
if ARGV[4] == '+' then
  redis.call('SADD', KEYS[2], ARGV[1])
elseif ARGV[4] == '-' then
  redis.call('SREM', KEYS[2], ARGV[1])
end
if ARGV[7] ~= '' then
  redis.call('XADD', KEYS[3], '*', 'reference', '', 'actor', ARGV[5], 'action', ARGV[7],
    'at', ARGV[6], 'detail', ARGV[8])
end
return {'ok', status}
