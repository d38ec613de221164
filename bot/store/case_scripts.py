"""Lua scripts of the cases domain, as module constants with their KEYS/ARGV contract.

Every key a script touches shares the `{cases}` hash tag, so each script runs
in one Redis Cluster slot. Scripts are queued with EVAL (not EVALSHA) so that a
pipeline never needs an extra SCRIPT LOAD/EXISTS round trip; Redis caches the
compiled body by its digest anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LuaScript:
    name: str
    source: str

    def queue(self, pipe: Any, keys: list[str], args: list[str | int]) -> None:
        pipe.eval(self.source, len(keys), *keys, *args)

    async def run(self, redis: Any, keys: list[str], args: list[str | int]) -> Any:
        return await redis.eval(self.source, len(keys), *keys, *args)


CREATE_CASE = LuaScript(
    "create_case",
    """
-- KEYS[1] idempotency key          KEYS[2] case sequence counter
-- KEYS[3] triage index (all)       KEYS[4] status index    KEYS[5] kind index
-- KEYS[6] priority index           KEYS[7] cases-by-phone set
-- KEYS[8] cases-per-day hash       KEYS[9] global audit stream
-- KEYS[10] outbox stream (the worker's events: confirmation SMS, on-call)
-- KEYS[11..] per candidate, two keys: case record, case audit stream
-- ARGV[1] idempotency TTL in seconds (0: no idempotency key)
-- ARGV[2] priority rank   ARGV[3] creation day   ARGV[4] created_at (ISO 8601)
-- ARGV[5] record fields, a JSON object of strings
-- ARGV[6] audit detail (JSON)
-- ARGV[7] outbox event fields, a JSON array of alternating names and values
-- ARGV[8..] candidate references, in the order of their KEYS pairs
-- Returns {'existing', ref} | {'created', ref} | {'taken'}
-- The outbox event is added in the same script as the case, so a process that
-- dies right after creating a case loses nothing the worker has to do.
local ttl = tonumber(ARGV[1])
if ttl > 0 then
  local existing = redis.call('GET', KEYS[1])
  if existing then return {'existing', existing} end
end
local first_candidate = 8
local chosen = nil
for i = first_candidate, #ARGV do
  if redis.call('EXISTS', KEYS[11 + (i - first_candidate) * 2]) == 0 then
    chosen = i
    break
  end
end
if not chosen then return {'taken'} end
local ref = ARGV[chosen]
local case_key = KEYS[11 + (chosen - first_candidate) * 2]
local audit_key = KEYS[12 + (chosen - first_candidate) * 2]
local seq = redis.call('INCR', KEYS[2])
local score = tonumber(ARGV[2]) * 1000000000000 + seq
local flat = {'reference', ref, 'seq', tostring(seq)}
for field, value in pairs(cjson.decode(ARGV[5])) do
  flat[#flat + 1] = field
  flat[#flat + 1] = value
end
redis.call('HSET', case_key, unpack(flat))
for i = 3, 6 do redis.call('ZADD', KEYS[i], score, ref) end
redis.call('SADD', KEYS[7], ref)
redis.call('HINCRBY', KEYS[8], ARGV[3], 1)
redis.call('XADD', audit_key, '*', 'actor', 'migrant', 'action', 'created',
  'at', ARGV[4], 'detail', ARGV[6])
redis.call('XADD', KEYS[9], '*', 'reference', ref, 'actor', 'migrant',
  'action', 'created', 'at', ARGV[4], 'detail', ARGV[6])
redis.call('XADD', KEYS[10], '*', 'reference', ref, unpack(cjson.decode(ARGV[7])))
if ttl > 0 then redis.call('SET', KEYS[1], ref, 'EX', ttl) end
return {'created', ref}
""",
)

LOOKUP_CASE = LuaScript(
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

WITHDRAW_BY_MIGRANT = LuaScript(
    "withdraw_by_migrant",
    """
-- KEYS[1] case record   KEYS[2] case audit stream   KEYS[3] global audit stream
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
local detail = cjson.encode({from = v[3], to = ARGV[4]})
redis.call('XADD', KEYS[2], '*', 'actor', 'migrant', 'action', 'status_changed',
  'at', ARGV[2], 'detail', detail)
redis.call('XADD', KEYS[3], '*', 'reference', v[1], 'actor', 'migrant',
  'action', 'status_changed', 'at', ARGV[2], 'detail', detail)
return 1
""",
)

ERASE_CASE = LuaScript(
    "erase_case",
    """
-- KEYS[1] case record   KEYS[2] case audit stream   KEYS[3] global audit stream
-- KEYS[4] case notes    KEYS[5] cases-by-phone set of the case's phone
-- ARGV[1] actor   ARGV[2] now (ISO 8601)   ARGV[3..] personal fields to delete
-- Returns 1 when the case was erased now, 0 when absent or erased already
local v = redis.call('HMGET', KEYS[1], 'reference', 'erased_at')
if not v[1] or (v[2] and v[2] ~= '') then return 0 end
for i = 3, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
redis.call('HSET', KEYS[1], 'erased_at', ARGV[2], 'updated_at', ARGV[2])
redis.call('DEL', KEYS[4])
redis.call('SREM', KEYS[5], v[1])
redis.call('XADD', KEYS[2], '*', 'actor', ARGV[1], 'action', 'erased', 'at', ARGV[2],
  'detail', '{}')
redis.call('XADD', KEYS[3], '*', 'reference', v[1], 'actor', ARGV[1], 'action', 'erased',
  'at', ARGV[2], 'detail', '{}')
return 1
""",
)

READ_CASE = LuaScript(
    "read_case",
    """
-- KEYS[1] case record   KEYS[2] case journal (notes)
-- KEYS[3] case audit stream   KEYS[4] global audit stream
-- ARGV[1] reader (actor)   ARGV[2] now (ISO 8601)   ARGV[3] the case's reference
-- Returns false when there is no such case, else {record (flat), journal entries}.
-- Reading personal data is audited in the same step as the read itself.
local record = redis.call('HGETALL', KEYS[1])
if #record == 0 then return false end
redis.call('XADD', KEYS[3], '*', 'actor', ARGV[1], 'action', 'read', 'at', ARGV[2],
  'detail', '{}')
redis.call('XADD', KEYS[4], '*', 'reference', ARGV[3], 'actor', ARGV[1], 'action', 'read',
  'at', ARGV[2], 'detail', '{}')
return {record, redis.call('LRANGE', KEYS[2], 0, -1)}
""",
)

PAGE_OF_CASES = LuaScript(
    "page_of_cases",
    """
-- KEYS[1..] indexes (sorted sets in triage order) that every match belongs to;
--           the smallest is walked, so a page costs O(log N + examined)
-- ARGV[1] case record key prefix: records are <prefix><reference>, all in the {cases} slot
--         (read-only access to records found by the walk, in the same slot as the KEYS)
-- ARGV[2] exclusive lower score bound (the cursor), '' for the first page
-- ARGV[3] page size   ARGV[4] most cases examined by this call
-- ARGV[5] JSON object {field: value} each match's record must carry
-- ARGV[6] reference prefix ('' for any)   ARGV[7] lowercase fragment of the name ('' for any)
-- ARGV[8..] record fields returned per match
-- Returns {next cursor or '', values of match 1, values of match 2, ...}
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
for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
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
    local answers = redis.call('HGET', key, 'answers')
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
      local values = redis.call('HMGET', key, unpack(fields))
      for k = 1, #fields do out[#out + 1] = values[k] or '' end
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
