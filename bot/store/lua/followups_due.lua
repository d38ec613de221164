-- followups_due.lua: what is due in one shard, check-ins to send and sent ones to
-- expire (bot/store/followups.py); it writes only a stale score (see below).
--
-- KEYS[1] shard's due index   KEYS[2] shard's follow-up hash
-- ARGV[1] now (epoch s)   ARGV[2] most cases returned   ARGV[3] ttl of a sent check-in (s)
-- Returns {reference, ids to send (space-separated), ids to expire, ...}.
-- (A record's format: followup_change.lua.)
local FIELDS = {'id', 'origin', 'channel', 'status', 'due', 'sent', 'answered',
  'economic', 'social', 'psychosocial', 'flags'}

local function parse_record(raw)
  local record = {returned = '', entries = {}}
  if not raw then return record end
  local first = true
  for part in string.gmatch(raw .. ';', '([^;]*);') do
    if first then
      record.returned = part
      first = false
    elseif part ~= '' then
      local entry, i = {}, 1
      for value in string.gmatch(part .. ',', '([^,]*),') do
        entry[FIELDS[i]] = value
        i = i + 1
      end
      for k = i, #FIELDS do entry[FIELDS[k]] = '' end
      record.entries[#record.entries + 1] = entry
    end
  end
  return record
end

-- The epoch second something next happens to the record: a scheduled check-in is due,
-- or a sent one expires (sent + ttl); false when nothing will.
local function next_due(record, ttl)
  local soonest = false
  for _, entry in ipairs(record.entries) do
    local at = false
    if entry.status == 's' then
      at = tonumber(entry.due)
    elseif entry.status == 't' and entry.sent ~= '' then
      at = tonumber(entry.sent) + ttl
    end
    if at and (not soonest or at < soonest) then soonest = at end
  end
  return soonest
end

local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[3])
local refs = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, ref in ipairs(refs) do
  local record = parse_record(redis.call('HGET', KEYS[2], ref))
  local send, expire = {}, {}
  for _, entry in ipairs(record.entries) do
    if entry.status == 's' and tonumber(entry.due) <= now then
      send[#send + 1] = entry.id
    elseif entry.status == 't' and entry.sent ~= '' and tonumber(entry.sent) + ttl <= now then
      expire[#expire + 1] = entry.id
    end
  end
  if #send == 0 and #expire == 0 then
    -- Nothing left to do now (a score set from another clock, or a changed ttl): its
    -- score moves to what is really next.
    local at = next_due(record, ttl)
    if at then redis.call('ZADD', KEYS[1], at, ref) else redis.call('ZREM', KEYS[1], ref) end
  else
    out[#out + 1] = ref
    out[#out + 1] = table.concat(send, ' ')
    out[#out + 1] = table.concat(expire, ' ')
  end
end
return out
