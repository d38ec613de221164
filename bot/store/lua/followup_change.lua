-- followup_change.lua: a change to one case's follow-up record and its due entry
-- (bot/store/followups.py): `schedule` the check-ins of a return, `add` one now,
-- `mark` some of them with a new status, or end a check-in call nobody took
-- (`unanswered`).
--
-- KEYS[1] shard's follow-up hash   KEYS[2] shard's due index   KEYS[3] case record
-- KEYS[4] case answers   KEYS[5] shard's audit stream   KEYS[6] case trail
-- ARGV[1] the change: schedule | add | mark | unanswered   ARGV[2] reference
-- ARGV[3] ttl of a sent check-in (s): when a sent one expires (its due score)
-- schedule (once: a record with its return time set is left as it is; only a case whose
-- answers say yes to follow-up gets check-ins; no audit event of its own: the status
-- change to `returned` is the event, and the check-ins are listed on the case):
--   ARGV[4] returned at (epoch s)   ARGV[5] consent answer's name
--   ARGV[6] its value meaning yes   ARGV[7] days after the return, space-separated
--   ARGV[8] channel code (s|v)
--   Returns the number of check-ins scheduled now; -1 when there is no such case.
-- add (a check-in due now, asked by an operator):
--   ARGV[4] now (epoch s)   ARGV[5] channel code (s|v)   ARGV[6] audit actor
--   ARGV[7] audit action   ARGV[8] now (ISO 8601)
--   Returns the new check-in's id; -1 when there is no such case.
-- unanswered (a check-in call nobody took: busy, no answer, a voicemail; once a call):
--   ARGV[4] the check-in's id   ARGV[5] when to call again (epoch s), '' for never
--   ARGV[6] audit actor   ARGV[7] audit action   ARGV[8] now (ISO 8601)
--   ARGV[9] why (the audit detail's `reason`)
--   A sent check-in (t) becomes expired (x) at once; unless it was itself a call again
--   (origin d) or ARGV[5] is '', a new check-in of origin d on the same channel is due
--   then. One audit event: {reason, followups: [id], redial: the new id (when one)}.
--   Returns the new check-in's id, 0 when none was added, -1 when the check-in was not
--   sent and unanswered (answered already, expired, cancelled, or no such one).
-- mark (some check-ins, in the statuses it may start from, get a new status):
--   ARGV[4] ids, space-separated, or '*' for every check-in
--   ARGV[5] status codes it may start from (e.g. 'sq')   ARGV[6] the new status code
--   ARGV[7] now (epoch s): the sent time (new status t) or the answer's (a)
--   ARGV[8] scores 'economic social psychosocial' in per mille, '-' for none (status a)
--   ARGV[9] flags (status a)   ARGV[10] audit actor   ARGV[11] audit action ('': none)
--   ARGV[12] now (ISO 8601)
--   ARGV[13] audit detail (a JSON object; the ids changed are added as `followups`)
--   An answer (a) also cancels every second call not placed yet (origin d, s or q),
--   listed in the detail as `calls_dropped`.
--   Returns the number of check-ins changed.
--
--
-- A record is one value of the shard's follow-up hash (field: the reference):
--   <returned at> ; <check-in> ; <check-in> ...
-- <returned at>: epoch second the case became `returned`, a comma, and the tenths of
--   days from the request to the return ('' until then);
-- <check-in>: id,origin,channel,status,due,sent,answered,economic,social,psychosocial,flags
--   (trailing empty fields left out)
--   origin  r: scheduled at the return   o: asked by an operator
--           d: a call again after a check-in call nobody took (`unanswered`)
--   channel s: SMS   v: voice call
--   status  s: scheduled   q: due, its job queued   t: sent   a: answered
--           x: expired   c: cancelled
--   due, sent, answered: epoch seconds; scores: per mille (0-1000), '' when none;
--   flags: 'A' an alarm answer was given, 'C' the migrant asked to be called.
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

local function format_record(record)
  local out = {record.returned}
  for _, entry in ipairs(record.entries) do
    local values, last = {}, 0
    for i, name in ipairs(FIELDS) do
      values[i] = entry[name] or ''
      if values[i] ~= '' then last = i end
    end
    out[#out + 1] = table.concat(values, ',', 1, last)
  end
  return table.concat(out, ';')
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

local function save_record(hash, due, ref, record, ttl)
  redis.call('HSET', hash, ref, format_record(record))
  local at = next_due(record, ttl)
  if at then
    redis.call('ZADD', due, at, ref)
  else
    redis.call('ZREM', due, ref)
  end
end

local function last_id(record)
  local top = 0
  for _, entry in ipairs(record.entries) do
    local id = tonumber(entry.id) or 0
    if id > top then top = id end
  end
  return top
end

-- Appends one audit event to the shard's stream; `trail` (or false) gets its id.
local function audit(stream, trail, ref, actor, action, at, detail)
  local id = redis.call('XADD', stream, '*', 'reference', ref, 'actor', actor,
    'action', action, 'at', at, 'detail', detail)
  if trail then redis.call('APPEND', trail, id .. ' ') end
  return id
end

-- Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
  return era * 146097 + yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy - 719468
end

local ref, ttl = ARGV[2], tonumber(ARGV[3])

local function schedule()
  if redis.call('EXISTS', KEYS[3]) == 0 then return -1 end
  local record = parse_record(redis.call('HGET', KEYS[1], ref))
  if record.returned ~= '' then return 0 end
  local returned = tonumber(ARGV[4])
  -- The header: the return time, then the tenths of days from the request to it (what
  -- the programme report's median is made of, computed once here).
  local tenths = ''
  local created = redis.call('HGET', KEYS[3], 'created_at') or ''
  local y, mo, d, h, mi, s = string.match(created,
    '^(%d%d%d%d)-(%d%d)-(%d%d)T(%d%d):(%d%d):(%d%d)')
  if y then
    local since = days_from_civil(tonumber(y), tonumber(mo), tonumber(d)) * 86400
      + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s)
    tenths = tostring(math.floor(math.max(returned - since, 0) / 8640))
  end
  record.returned = ARGV[4] .. ',' .. tenths
  local consent = false
  local erased = redis.call('HGET', KEYS[3], 'erased_at')
  local answers = redis.call('GET', KEYS[4])
  if answers and (not erased or erased == '') then
    local ok, decoded = pcall(cjson.decode, answers)
    consent = ok and type(decoded) == 'table' and decoded[ARGV[5]] == ARGV[6]
  end
  local count = 0
  if consent then
    local id = last_id(record)
    for day in string.gmatch(ARGV[7], '%d+') do
      id = id + 1
      record.entries[#record.entries + 1] = {id = tostring(id), origin = 'r',
        channel = ARGV[8], status = 's',
        due = string.format('%d', returned + tonumber(day) * 86400)}
      count = count + 1
    end
  end
  save_record(KEYS[1], KEYS[2], ref, record, ttl)
  return count
end

local function add()
  if redis.call('EXISTS', KEYS[3]) == 0 then return -1 end
  local record = parse_record(redis.call('HGET', KEYS[1], ref))
  local id = last_id(record) + 1
  record.entries[#record.entries + 1] = {id = tostring(id), origin = 'o', channel = ARGV[5],
    status = 's', due = ARGV[4]}
  save_record(KEYS[1], KEYS[2], ref, record, ttl)
  local channel = 'sms'
  if ARGV[5] == 'v' then channel = 'voice' end
  audit(KEYS[5], KEYS[6], ref, ARGV[6], ARGV[7], ARGV[8],
    cjson.encode({followup = id, channel = channel}))
  return id
end

local function mark()
  local raw = redis.call('HGET', KEYS[1], ref)
  if not raw then return 0 end
  local record = parse_record(raw)
  local wanted = {}
  for id in string.gmatch(ARGV[4], '[^ ]+') do wanted[id] = true end
  local scores = {}
  for value in string.gmatch(ARGV[8], '[^ ]+') do
    if value == '-' then scores[#scores + 1] = '' else scores[#scores + 1] = value end
  end
  local changed = {}
  for _, entry in ipairs(record.entries) do
    if (wanted['*'] or wanted[entry.id]) and string.find(ARGV[5], entry.status, 1, true) then
      entry.status = ARGV[6]
      if ARGV[6] == 't' then entry.sent = ARGV[7] end
      if ARGV[6] == 'a' then
        entry.answered = ARGV[7]
        entry.economic, entry.social, entry.psychosocial = scores[1] or '', scores[2] or '',
          scores[3] or ''
        entry.flags = ARGV[9]
      end
      changed[#changed + 1] = tonumber(entry.id)
    end
  end
  if #changed == 0 then return 0 end
  -- An answer makes a second call not yet placed pointless: it is dropped (cancelled).
  local dropped = {}
  if ARGV[6] == 'a' then
    for _, entry in ipairs(record.entries) do
      if entry.origin == 'd' and (entry.status == 's' or entry.status == 'q') then
        entry.status = 'c'
        dropped[#dropped + 1] = tonumber(entry.id)
      end
    end
  end
  save_record(KEYS[1], KEYS[2], ref, record, ttl)
  if ARGV[11] ~= '' then
    local detail = cjson.decode(ARGV[13])
    detail['followups'] = changed
    if #dropped > 0 then detail['calls_dropped'] = dropped end
    local trail = false
    if redis.call('EXISTS', KEYS[3]) == 1 then trail = KEYS[6] end
    audit(KEYS[5], trail, ref, ARGV[10], ARGV[11], ARGV[12], cjson.encode(detail))
  end
  return #changed
end

local function unanswered()
  local raw = redis.call('HGET', KEYS[1], ref)
  if not raw then return -1 end
  local record = parse_record(raw)
  local called = nil
  for _, entry in ipairs(record.entries) do
    if entry.id == ARGV[4] and entry.status == 't' then called = entry end
  end
  if not called then return -1 end
  called.status = 'x'
  local detail = {reason = ARGV[9], followups = {tonumber(called.id)}}
  local again = 0
  if ARGV[5] ~= '' and called.origin ~= 'd' then
    again = last_id(record) + 1
    record.entries[#record.entries + 1] = {id = tostring(again), origin = 'd',
      channel = called.channel, status = 's', due = ARGV[5]}
    detail['redial'] = again
  end
  save_record(KEYS[1], KEYS[2], ref, record, ttl)
  local trail = false
  if redis.call('EXISTS', KEYS[3]) == 1 then trail = KEYS[6] end
  audit(KEYS[5], trail, ref, ARGV[6], ARGV[7], ARGV[8], cjson.encode(detail))
  return again
end

if ARGV[1] == 'schedule' then return schedule() end
if ARGV[1] == 'add' then return add() end
if ARGV[1] == 'mark' then return mark() end
if ARGV[1] == 'unanswered' then return unanswered() end
return redis.error_reply('unknown change ' .. ARGV[1])
