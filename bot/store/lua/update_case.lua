-- update_case.lua: an operator's write, decided in Python from the record as read
-- (bot/store/case_updates.py); written only if the record is still the one read.
--
-- KEYS[1] case record   KEYS[2] case journal   KEYS[3] shard's audit stream
-- KEYS[4] case trail
-- KEYS[5..4+n] indexes the case leaves   KEYS[5+n..] indexes the case joins (or stays in)
-- ARGV[1] SHA-1 of the record as read (HGETALL joined by NUL)   ARGV[2] n (indexes left)
-- ARGV[3] triage score   ARGV[4] record fields to set (JSON object)
-- ARGV[5] journal entry to append ('' for none)   ARGV[6] reference
-- ARGV[7] audit events, a JSON array of [actor, action, at, detail]
-- Returns 1 when written, 0 when the record changed since it was read (nothing written),
-- -1 when the case does not exist.
-- Appends one audit event to the shard's stream; `trail` (or false) gets its id.
local function audit(stream, trail, ref, actor, action, at, detail)
  local id = redis.call('XADD', stream, '*', 'reference', ref, 'actor', actor,
    'action', action, 'at', at, 'detail', detail)
  if trail then redis.call('APPEND', trail, id .. ' ') end
  return id
end
local flat = redis.call('HGETALL', KEYS[1])
if #flat == 0 then return -1 end
if redis.sha1hex(table.concat(flat, '\0')) ~= ARGV[1] then return 0 end
local left = tonumber(ARGV[2])
for i = 5, 4 + left do redis.call('ZREM', KEYS[i], ARGV[6]) end
for i = 5 + left, #KEYS do redis.call('ZADD', KEYS[i], ARGV[3], ARGV[6]) end
local fields = {}
for field, value in pairs(cjson.decode(ARGV[4])) do
  fields[#fields + 1] = field
  fields[#fields + 1] = value
end
if #fields > 0 then redis.call('HSET', KEYS[1], unpack(fields)) end
if ARGV[5] ~= '' then redis.call('RPUSH', KEYS[2], ARGV[5]) end
for _, event in ipairs(cjson.decode(ARGV[7])) do
  audit(KEYS[3], KEYS[4], ARGV[6], event[1], event[2], event[3], event[4])
end
return 1
