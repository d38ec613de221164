-- report_facts.lua: what the programme report knows of some cases of one shard, one
-- short "fact" a case, rewritten whole from the record and answers as they are now (so
-- running it twice, or late, is harmless); the worker runs it for the cases of new audit
-- events (bot/store/report_reads.py).
-- KEYS[1] the shard's report facts hash (reference → fact)
-- ARGV[1] the shard's case record key prefix   ARGV[2] the shard's answers key prefix
--         (records and answers are <prefix><reference>, in the slot of KEYS[1])
-- ARGV[3] the answer meaning yes   ARGV[4] vulnerability answers (space-separated)
-- ARGV[5] nationality answer   ARGV[6] country answer   ARGV[7..] references
-- A fact: month created (YYYY-MM) | kind | status | vulnerability flags (0/1, in
--         ARGV[4]'s order) | nationality as typed | country as typed: many cases share
--         one, which the report counts as one string. An erased case keeps its flags (counts
--         are not personal) and loses the names; a case gone loses its fact.
-- Returns the number of facts written.
local SEP = '|'
local names = {}
for name in string.gmatch(ARGV[4], '%S+') do names[#names + 1] = name end
local function typed(raw, name)
  -- The answers are compact JSON (bot/store/cases.py encode_answers): a plain search.
  local value = string.match(raw, '"' .. name .. '":"([^"]*)"') or ''
  return (string.gsub(value, '[|\r\n]', ' '))
end
local written = 0
for i = 7, #ARGV do
  local ref = ARGV[i]
  local v = redis.call('HMGET', ARGV[1] .. ref, 'kind', 'status', 'created_at', 'erased_at')
  if not v[1] then
    redis.call('HDEL', KEYS[1], ref)
  else
    local flags, nationality, country = '', '', ''
    if v[4] and v[4] ~= '' then
      local old = redis.call('HGET', KEYS[1], ref)
      flags = old and string.match(old, '^[^|]*|[^|]*|[^|]*|([^|]*)') or ''
    else
      local raw = redis.call('GET', ARGV[2] .. ref) or ''
      local bits = {}
      for k, name in ipairs(names) do
        bits[k] = string.find(raw, '"' .. name .. '":"' .. ARGV[3] .. '"', 1, true) and '1'
          or '0'
      end
      flags = table.concat(bits)
      nationality, country = typed(raw, ARGV[5]), typed(raw, ARGV[6])
    end
    redis.call('HSET', KEYS[1], ref, table.concat({string.sub(v[3] or '', 1, 7), v[1],
      v[2] or '', flags, nationality, country}, SEP))
    written = written + 1
  end
end
return written
