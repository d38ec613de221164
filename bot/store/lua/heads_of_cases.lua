-- heads_of_cases.lua: one shard's first matches of a triage page (bot/store/triage.py).
--
-- A page is one call per shard, all in one round trip; the k-way merge needs each
-- shard's scores and references, and the fields of its first few matches only (the
-- others it chooses are read by rows_of_cases.lua).
--
-- KEYS[1..] indexes of one shard (sorted sets in triage order) that every match belongs
--           to; the smallest is walked, so a page costs O(log N + examined)
-- ARGV[1] case record key prefix of the shard: records are <prefix><reference>
--         (read-only access to records found by the walk, in the same slot as the KEYS)
-- ARGV[2] exclusive lower score bound (the cursor), '' for the first page
-- ARGV[3] most matches returned   ARGV[4] most cases examined by this call
-- ARGV[5] JSON object {field: value} each match's record must carry
-- ARGV[6] reference prefix ('' for any)   ARGV[7] lowercase fragment of the name ('' for any)
-- ARGV[8] the shard's answers key prefix (answers are <prefix><reference>, same slot)
-- ARGV[9] how many of the first matches come with their fields (the rest: heads only)
-- ARGV[10] record fields returned with those matches, space-separated ('answers': the
--          answers' JSON)
-- Returns {frontier or '', score of match 1, reference of match 1, [values of match 1,]
--          score of match 2, ...}: the frontier is the score of the last case examined
--          when the walk stopped before the index's end.
local walk = KEYS[1]
local smallest = redis.call('ZCARD', walk)
for i = 2, #KEYS do
  local size = redis.call('ZCARD', KEYS[i])
  if size < smallest then walk, smallest = KEYS[i], size end
end
local wanted_fields, wanted_values = {}, {}
for field, value in pairs(cjson.decode(ARGV[5])) do
  wanted_fields[#wanted_fields + 1] = field
  wanted_values[#wanted_values + 1] = value
end
local limit = tonumber(ARGV[3])
local budget = tonumber(ARGV[4])
local prefix, fragment = ARGV[6], ARGV[7]
local with_fields = tonumber(ARGV[9])
local fields = {}
for name in string.gmatch(ARGV[10] or '', '%S+') do fields[#fields + 1] = name end
local out = {''}
local found, examined = 0, 0
local bound = '-inf'
if ARGV[2] ~= '' then bound = '(' .. ARGV[2] end
local last = nil
local exhausted = false

-- One HMGET a case examined: the filter's fields, then (while matches still come with
-- their fields) the fields returned.
local probe_plain, probe_full = {}, {}
for i = 1, #wanted_fields do
  probe_plain[i] = wanted_fields[i]
  probe_full[i] = wanted_fields[i]
end
for k = 1, #fields do probe_full[#probe_full + 1] = fields[k] end
local width = #wanted_fields

local function values_if_match(ref, key, full)
  if prefix ~= '' and string.sub(ref, 1, #prefix) ~= prefix then return false end
  local have = {}
  local probe = full and probe_full or probe_plain
  if #probe > 0 then have = redis.call('HMGET', key, unpack(probe)) end
  for i = 1, width do
    if have[i] ~= wanted_values[i] then return false end
  end
  local answers = nil
  if fragment ~= '' then
    answers = redis.call('GET', ARGV[8] .. ref)
    if not answers then return false end
    local ok, decoded = pcall(cjson.decode, answers)
    if not ok or type(decoded.name) ~= 'string' then return false end
    if not string.find(string.lower(decoded.name), fragment, 1, true) then return false end
  end
  if not full then return true end
  local values = {}
  for k = 1, #fields do
    local value = have[width + k]
    if fields[k] == 'answers' then
      value = answers or redis.call('GET', ARGV[8] .. ref)
    end
    values[k] = value or ''
  end
  return values
end

while found < limit and examined < budget do
  local chunk = redis.call('ZRANGEBYSCORE', walk, bound, '+inf', 'WITHSCORES',
    'LIMIT', 0, math.min((limit - found) * 2 + 4, budget - examined, 1000))
  if #chunk == 0 then exhausted = true break end
  for j = 1, #chunk, 2 do
    local ref = chunk[j]
    examined = examined + 1
    last = chunk[j + 1]
    local full = found < with_fields and #fields > 0
    local values = values_if_match(ref, ARGV[1] .. ref, full)
    if values then
      found = found + 1
      out[#out + 1] = last
      out[#out + 1] = ref
      if full then
        for k = 1, #fields do out[#out + 1] = values[k] end
      end
      if found == limit then break end
    end
    if examined >= budget then break end
  end
  bound = '(' .. last
end
if not exhausted and last then
  local more = redis.call('ZRANGEBYSCORE', walk, '(' .. last, '+inf', 'LIMIT', 0, 1)
  if #more > 0 then out[1] = last end
end
return out
