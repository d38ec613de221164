"""Lua scripts of the cases domain, as module constants with their KEYS/ARGV contract.

Every key a script touches is in one case shard (one hash tag, one Cluster
slot): the case record, its journal, the shard's indexes and audit stream.
An audit event goes to the shard's stream, and its id is appended to the
case's trail (`keys.case_trail`), so a case's trail is read by id, never by a
scan. The migrant's answers are a string beside the record (`keys.case_answers`):
the record keeps only short values, which Redis stores as a compact listpack.
"""

from __future__ import annotations

from bot.store.scripts import Script

LuaScript = Script

# Appends one audit event to the shard's stream; `trail` (or false) gets its id.
AUDIT_FUNCTION = """
local function audit(stream, trail, ref, actor, action, at, detail)
  local id = redis.call('XADD', stream, '*', 'reference', ref, 'actor', actor,
    'action', action, 'at', at, 'detail', detail)
  if trail then redis.call('APPEND', trail, id .. ' ') end
  return id
end
"""

CREATE_CASE = Script(
    "create_case",
    AUDIT_FUNCTION + """
-- KEYS[1] idempotency key          KEYS[2] shard's case sequence counter
-- KEYS[3] triage index (all)       KEYS[4] status index    KEYS[5] kind index
-- KEYS[6] priority index           KEYS[7] cases-by-phone set
-- KEYS[8] cases-per-day hash       KEYS[9] shard's audit stream
-- KEYS[10] shard's outbox stream (the worker's events: confirmation SMS, on-call)
-- KEYS[11..] per candidate reference, three keys: case record, answers, trail
-- ARGV[1] idempotency TTL in seconds (0: no idempotency key)
-- ARGV[2] priority rank   ARGV[3] creation day   ARGV[4] created_at (ISO 8601)
-- ARGV[5] record fields, a JSON object of strings (answers apart: ARGV[9])
-- ARGV[6] audit detail (JSON)
-- ARGV[7] outbox event fields, a JSON array of alternating names and values
-- ARGV[8] time part of the triage score without its sequence bits:
--         created_at in ms * 1024 + the shard number
-- ARGV[9] the answers (JSON)
-- ARGV[10..] candidate references, in the order of their KEYS
-- Returns {'existing', ref} | {'created', ref} | {'taken'}
-- The outbox event is added in the same script as the case, so a process that
-- dies right after creating a case loses nothing the worker has to do.
local ttl = tonumber(ARGV[1])
if ttl > 0 then
  local existing = redis.call('GET', KEYS[1])
  if existing then return {'existing', existing} end
end
local first_candidate = 10
local chosen = nil
for i = first_candidate, #ARGV do
  if redis.call('EXISTS', KEYS[11 + (i - first_candidate) * 3]) == 0 then
    chosen = i
    break
  end
end
if not chosen then return {'taken'} end
local ref = ARGV[chosen]
local case_key = KEYS[11 + (chosen - first_candidate) * 3]
local answers_key = KEYS[12 + (chosen - first_candidate) * 3]
local trail_key = KEYS[13 + (chosen - first_candidate) * 3]
local seq = redis.call('INCR', KEYS[2])
-- Scores stay below 2^53 (exact in a double): rank * 2^51 + ms * 1024 + seq bits + shard.
local tri = tonumber(ARGV[8]) + (seq % 64) * 16
local score = string.format('%.0f', tonumber(ARGV[2]) * 2251799813685248 + tri)
local flat = {'reference', ref, 'tri', string.format('%.0f', tri)}
for field, value in pairs(cjson.decode(ARGV[5])) do
  flat[#flat + 1] = field
  flat[#flat + 1] = value
end
redis.call('HSET', case_key, unpack(flat))
redis.call('SET', answers_key, ARGV[9])
for i = 3, 6 do redis.call('ZADD', KEYS[i], score, ref) end
redis.call('SADD', KEYS[7], ref)
redis.call('HINCRBY', KEYS[8], ARGV[3], 1)
audit(KEYS[9], trail_key, ref, 'migrant', 'created', ARGV[4], ARGV[6])
redis.call('XADD', KEYS[10], '*', 'reference', ref, unpack(cjson.decode(ARGV[7])))
if ttl > 0 then redis.call('SET', KEYS[1], ref, 'EX', ttl) end
return {'created', ref}
""",
)

LOOKUP_CASE = Script(
    "lookup_case",
    """
-- KEYS[1] case record
-- ARGV[1] the caller's phone (E.164); compared here so it never leaves Redis
-- Returns false when there is no such case, else {reference, kind, status, 1|0}
local v = redis.call('HMGET', KEYS[1], 'reference', 'kind', 'status', 'phone')
if not v[1] then return false end
local is_callers = 0
if v[4] and v[4] ~= '' and v[4] == ARGV[1] then is_callers = 1 end
return {v[1], v[2], v[3], is_callers}
""",
)

WITHDRAW_BY_MIGRANT = Script(
    "withdraw_by_migrant",
    AUDIT_FUNCTION + """
-- KEYS[1] case record   KEYS[2] shard's audit stream   KEYS[3] case trail
-- KEYS[4] status index of 'withdrawn'
-- KEYS[5..] status indexes of the statuses one may withdraw from
-- ARGV[1] the caller's phone   ARGV[2] now (ISO 8601)   ARGV[3] kind that may be withdrawn
-- ARGV[4] 'withdrawn'   ARGV[5..] the statuses one may withdraw from, as KEYS[5..]
-- Returns 1 when the case was withdrawn now, else 0
local v = redis.call('HMGET', KEYS[1], 'reference', 'kind', 'status', 'phone')
if not v[1] or v[2] ~= ARGV[3] or not v[4] or v[4] ~= ARGV[1] then return 0 end
local source_index = nil
for i = 5, #ARGV do
  if ARGV[i] == v[3] then source_index = KEYS[i] end
end
if not source_index then return 0 end
local score = redis.call('ZSCORE', source_index, v[1])
redis.call('ZREM', source_index, v[1])
redis.call('ZADD', KEYS[4], score, v[1])
redis.call('HSET', KEYS[1], 'status', ARGV[4], 'updated_at', ARGV[2])
audit(KEYS[2], KEYS[3], v[1], 'migrant', 'status_changed', ARGV[2],
  cjson.encode({from = v[3], to = ARGV[4]}))
return 1
""",
)

ERASE_CASE = Script(
    "erase_case",
    AUDIT_FUNCTION + """
-- KEYS[1] case record   KEYS[2] shard's audit stream
-- KEYS[3] case notes    KEYS[4] cases-by-phone set of the case's phone
-- KEYS[5] case answers  KEYS[6] case trail
-- ARGV[1] actor   ARGV[2] now (ISO 8601)   ARGV[3..] personal fields to delete
-- Returns 1 when the case was erased now, 0 when absent or erased already
local v = redis.call('HMGET', KEYS[1], 'reference', 'erased_at')
if not v[1] or (v[2] and v[2] ~= '') then return 0 end
for i = 3, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
redis.call('HSET', KEYS[1], 'erased_at', ARGV[2], 'updated_at', ARGV[2])
redis.call('DEL', KEYS[3], KEYS[5])
redis.call('SREM', KEYS[4], v[1])
audit(KEYS[2], KEYS[6], v[1], ARGV[1], 'erased', ARGV[2], '{}')
return 1
""",
)

READ_CASE = Script(
    "read_case",
    AUDIT_FUNCTION + """
-- KEYS[1] case record   KEYS[2] case journal (notes)   KEYS[3] shard's audit stream
-- KEYS[4] case answers   KEYS[5] case trail
-- ARGV[1] reader (actor)   ARGV[2] now (ISO 8601)   ARGV[3] the case's reference
-- Returns false when there is no such case, else {record (flat), journal entries,
-- answers (JSON) or false}.
-- Reading personal data is audited in the same step as the read itself.
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
audit(KEYS[3], KEYS[5], ARGV[3], ARGV[1], 'read', ARGV[2], '{}')
return {redis.call('HGETALL', KEYS[1]), redis.call('LRANGE', KEYS[2], 0, -1),
  redis.call('GET', KEYS[4])}
""",
)

APPEND_AUDIT = Script(
    "append_audit",
    AUDIT_FUNCTION + """
-- KEYS[1] shard's audit stream   KEYS[2] case record   KEYS[3] case trail
-- (KEYS[2] and KEYS[3] are ignored when ARGV[1] is '')
-- ARGV[1] reference ('' for an event about no case)   ARGV[2] actor   ARGV[3] action
-- ARGV[4] at (ISO 8601)   ARGV[5] detail (JSON)
-- Returns the event's id.
local trail = false
if ARGV[1] ~= '' and redis.call('EXISTS', KEYS[2]) == 1 then trail = KEYS[3] end
return audit(KEYS[1], trail, ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
""",
)

CASE_EVENTS = Script(
    "case_events",
    """
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
""",
)

UPDATE_CASE = Script(
    "update_case",
    AUDIT_FUNCTION + """
-- An operator's write, decided in Python from the record as read (optimistic):
-- KEYS[1] case record   KEYS[2] case journal   KEYS[3] shard's audit stream
-- KEYS[4] case trail
-- KEYS[5..4+n] indexes the case leaves   KEYS[5+n..] indexes the case joins (or stays in)
-- ARGV[1] SHA-1 of the record as read (HGETALL joined by NUL)   ARGV[2] n (indexes left)
-- ARGV[3] triage score   ARGV[4] record fields to set (JSON object)
-- ARGV[5] journal entry to append ('' for none)   ARGV[6] reference
-- ARGV[7] audit events, a JSON array of [actor, action, at, detail]
-- Returns 1 when written, 0 when the record changed since it was read (nothing written),
-- -1 when the case does not exist.
local flat = redis.call('HGETALL', KEYS[1])
if #flat == 0 then return -1 end
if redis.sha1hex(table.concat(flat, '\\0')) ~= ARGV[1] then return 0 end
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
""",
)

PAGE_OF_CASES = Script(
    "page_of_cases",
    """
-- KEYS[1..] indexes of one shard (sorted sets in triage order) that every match belongs
--           to; the smallest is walked, so a page costs O(log N + examined)
-- ARGV[1] case record key prefix of the shard: records are <prefix><reference>
--         (read-only access to records found by the walk, in the same slot as the KEYS)
-- ARGV[2] exclusive lower score bound (the cursor), '' for the first page
-- ARGV[3] page size   ARGV[4] most cases examined by this call
-- ARGV[5] JSON object {field: value} each match's record must carry
-- ARGV[6] reference prefix ('' for any)   ARGV[7] lowercase fragment of the name ('' for any)
-- ARGV[8] the shard's answers key prefix (answers are <prefix><reference>, same slot)
-- ARGV[9..] record fields returned per match ('answers': the answers' JSON)
-- Returns {next cursor or '', score of match 1, values of match 1, score of match 2, ...}
local walk = KEYS[1]
local smallest = redis.call('ZCARD', walk)
for i = 2, #KEYS do
  local size = redis.call('ZCARD', KEYS[i])
  if size < smallest then walk, smallest = KEYS[i], size end
end
local filters = cjson.decode(ARGV[5])
local limit = tonumber(ARGV[3])
local budget = tonumber(ARGV[4])
local prefix, fragment = ARGV[6], ARGV[7]
local fields = {}
for i = 9, #ARGV do fields[#fields + 1] = ARGV[i] end
local out = {''}
local found, examined = 0, 0
local bound = '-inf'
if ARGV[2] ~= '' then bound = '(' .. ARGV[2] end
local last = nil
local exhausted = false

local function matches(ref, key)
  for field, wanted in pairs(filters) do
    if redis.call('HGET', key, field) ~= wanted then return false end
  end
  if prefix ~= '' and string.sub(ref, 1, #prefix) ~= prefix then return false end
  if fragment ~= '' then
    local answers = redis.call('GET', ARGV[8] .. ref)
    if not answers then return false end
    local ok, decoded = pcall(cjson.decode, answers)
    if not ok or type(decoded.name) ~= 'string' then return false end
    if not string.find(string.lower(decoded.name), fragment, 1, true) then return false end
  end
  return true
end

while found < limit and examined < budget do
  local chunk = redis.call('ZRANGEBYSCORE', walk, bound, '+inf', 'WITHSCORES',
    'LIMIT', 0, math.min(100, budget - examined))
  if #chunk == 0 then exhausted = true break end
  for j = 1, #chunk, 2 do
    local ref = chunk[j]
    local key = ARGV[1] .. ref
    examined = examined + 1
    last = chunk[j + 1]
    if matches(ref, key) then
      found = found + 1
      out[#out + 1] = last
      local values = redis.call('HMGET', key, unpack(fields))
      for k = 1, #fields do
        if fields[k] == 'answers' then values[k] = redis.call('GET', ARGV[8] .. ref) end
        out[#out + 1] = values[k] or ''
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
""",
)

OPEN_REQUEST_OF_PHONE = Script(
    "open_request_of_phone",
    """
-- KEYS[1] the phone's cases-by-phone set in its own shard
-- ARGV[1] that shard's case record key prefix (records found through the set: same slot)
-- ARGV[2] kind   ARGV[3..] the statuses that count as open
-- Returns {reference, status} of the phone's newest open case of that kind, or false.
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
""",
)
