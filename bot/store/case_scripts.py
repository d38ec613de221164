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

OWN_CASE_STATUS = Script(
    "own_case_status",
    AUDIT_FUNCTION + """
-- A status change the migrant makes to a case of their own (the rule is the caller's:
-- which kind, from which statuses, to which; the script only checks it atomically).
-- KEYS[1] case record   KEYS[2] shard's audit stream   KEYS[3] case trail
-- KEYS[4] status index of the new status
-- KEYS[5..] status indexes of the statuses the change may start from
-- ARGV[1] the caller's phone   ARGV[2] now (ISO 8601)   ARGV[3] the kind it applies to
-- ARGV[4] the new status   ARGV[5] audit actor   ARGV[6] audit action
-- ARGV[7..] the statuses it may start from, as KEYS[5..]
-- Returns 1 when the status changed now, else 0 (not the caller's, other kind or status)
local v = redis.call('HMGET', KEYS[1], 'reference', 'kind', 'status', 'phone')
if not v[1] or v[2] ~= ARGV[3] or not v[4] or v[4] ~= ARGV[1] then return 0 end
local source_index = nil
for i = 7, #ARGV do
  if ARGV[i] == v[3] then source_index = KEYS[i - 2] end
end
if not source_index then return 0 end
local score = redis.call('ZSCORE', source_index, v[1])
redis.call('ZREM', source_index, v[1])
redis.call('ZADD', KEYS[4], score, v[1])
redis.call('HSET', KEYS[1], 'status', ARGV[4], 'updated_at', ARGV[2])
audit(KEYS[2], KEYS[3], v[1], ARGV[5], ARGV[6], ARGV[2],
  cjson.encode({from = v[3], to = ARGV[4]}))
return 1
""",
)

ERASE_CASE = Script(
    "erase_case",
    AUDIT_FUNCTION + """
-- KEYS[1] case record   KEYS[2] shard's audit stream   KEYS[3] case trail
-- KEYS[4] cases-by-phone set of the case's phone
-- KEYS[5..] keys beside the record that the erasure deletes (answers, journal)
-- ARGV[1] actor   ARGV[2] now (ISO 8601)   ARGV[3] audit action
-- ARGV[4..] record fields to delete
-- Returns 1 when the case was erased now, 0 when absent or erased already
local v = redis.call('HMGET', KEYS[1], 'reference', 'erased_at')
if not v[1] or (v[2] and v[2] ~= '') then return 0 end
for i = 4, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
redis.call('HSET', KEYS[1], 'erased_at', ARGV[2], 'updated_at', ARGV[2])
for i = 5, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('SREM', KEYS[4], v[1])
audit(KEYS[2], KEYS[3], v[1], ARGV[1], ARGV[3], ARGV[2], '{}')
return 1
""",
)

READ_CASE = Script(
    "read_case",
    AUDIT_FUNCTION + """
-- KEYS[1] case record   KEYS[2] case journal (notes)   KEYS[3] shard's audit stream
-- KEYS[4] case answers   KEYS[5] case trail
-- ARGV[1] reader (actor)   ARGV[2] now (ISO 8601)   ARGV[3] the case's reference
-- ARGV[4] audit action
-- Returns false when there is no such case, else {record (flat), journal entries,
-- answers (JSON) or false}.
-- Reading personal data is audited in the same step as the read itself.
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
audit(KEYS[3], KEYS[5], ARGV[3], ARGV[1], ARGV[4], ARGV[2], '{}')
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

NEWEST_CASE_OF_PHONE = Script(
    "newest_case_of_phone",
    """
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
""",
)
