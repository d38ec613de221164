-- rows_of_cases.lua: the rows of cases a triage page chose, in one shard
-- (bot/store/triage.py).
--
-- KEYS[1] any key of the shard (its triage index): routes the call to the shard's slot
-- ARGV[1] the shard's case record key prefix   ARGV[2] the shard's answers key prefix
-- ARGV[3] n, the number of fields   ARGV[4..3+n] record fields ('answers': the answers' JSON)
-- ARGV[4+n..] references of the shard (records read by prefix, in the same slot)
-- Returns, per reference, 1 or 0 (the record exists) then its n values ('' when absent).
local n = tonumber(ARGV[3])
local fields, wants_answers = {}, false
for i = 1, n do
  fields[i] = ARGV[3 + i]
  if fields[i] == 'answers' then wants_answers = true end
end
local out = {}
for i = 4 + n, #ARGV do
  local ref = ARGV[i]
  local key = ARGV[1] .. ref
  local values = redis.call('HMGET', key, 'reference', unpack(fields))
  out[#out + 1] = values[1] and 1 or 0
  local answers = false
  if wants_answers then answers = redis.call('GET', ARGV[2] .. ref) end
  for k = 1, n do
    local value = values[k + 1]
    if fields[k] == 'answers' then value = answers end
    out[#out + 1] = value or ''
  end
end
return out
