-- phone.lua: a phone's state value, and the cases its conversation creates.
--
-- One script, one operation a call (ARGV[1] names it): the value's format is read and
-- written in this file only, and a step that creates a case does both in one call.
-- Every key of a call is in the phone's case shard (one Cluster slot).
--
-- The value: parts joined by RS (\30), each `name US expiry US payload` (US \31; expiry an
-- epoch second in base 36, '' for none); the key expires with its latest part
-- (bot/store/phone_state.py reads it in Python). Parts: p profile (the language, then '!'
-- when opted out), d draft, x what the phone was never told (' key key'), n rate counter,
-- b the last free-text body's digest and its repeats, s<c> session and r<c> receipts of
-- channel c (u USSD, m SMS, v voice). A draft '=s<c>' stands for that session's payload
-- (the answers are not kept twice) and takes it when the session changes, ends or expires.
--
-- VALUES, what 'step' and 'commit' write, nine arguments: session, its TTL (s); profile,
--   its TTL; draft ('=': the session written here), its TTL; receipts, its TTL; '-' once
--   the phone has been told what it was never told, else ''. A value of '' keeps the
--   stored one, '-' deletes it; a TTL of 0 means no expiry.
-- CASE, a case to create, after an operation's own KEYS and ARGV (bot/store/cases.py):
--   keys: idempotency key, the shard's case sequence counter, triage index (all), status
--     index, kind index, priority index, cases-by-phone set, cases-per-day hash, the
--     shard's audit stream, its outbox stream (the worker's events: confirmation SMS,
--     on-call); then three per candidate reference: case record, answers, trail
--   args: idempotency TTL in seconds (0: no idempotency key), priority rank, creation
--     day, created_at (ISO 8601), record fields (a JSON object of strings, the answers
--     apart), audit detail (JSON), outbox event fields (a JSON array of alternating names
--     and values), the triage score's time part without its sequence bits (created_at in
--     ms * 1024 + the shard number), the answers (JSON), then the candidate references
--     in the order of their keys
--   Its reply: {'existing', ref} (the idempotency key's case) | {'created', ref} |
--   {'taken'} (every candidate is). The outbox event is added with the case: a process
--   that dies right after creating it loses nothing the worker has to do.
--
-- ARGV[1] 'step' (bot/store/sessions.py): a step computed from the state this process saw
--   last, checked and written in one round trip; with ARGV[7] '', the state read and the
--   lease taken for a step to compute (BEGIN).
--   KEYS[1] the phone's state  KEYS[2] lease  KEYS[3] abandoned mark of this lease token
--   KEYS[4..] CASE's keys, when the step creates a case (before its write)
--   ARGV[2] lease token  ARGV[3] lease duration (ms)  ARGV[4] message digest ('' for none)
--   ARGV[5] the rate limit, '' for none, else four words joined by spaces: the limit, the
--           window (s), the limit of one free-text body sent again and again in a row,
--           and the digest of this message's body ('' when it is menu keys: not a
--           loop's sign)
--   ARGV[6] the channel's code
--   ARGV[7] the state the step was computed from: session, profile, draft, receipts and
--           unseen ('' where absent) joined by NUL; '' for none
--   ARGV[8..16] VALUES   ARGV[17..] CASE's args
--   Returns {4, the case's reply (none without a case)} once written; {3, receipts,
--   session} when the receipts already answer this message (nothing done); {0} while a
--   lease is held (or this token was given up on); {2, newly} over the rate limit (no
--   lease; newly 1 for the message that crossed it); else {1, session, profile, draft,
--   receipts, unseen} (false where absent): nothing written, the lease taken.
-- ARGV[1] 'commit' (sessions.py): the write after 'step' read the state, while the lease
--   is still this token's; the lease is released.
--   KEYS[1] the phone's state  KEYS[2] lease  KEYS[3..] CASE's keys, if one is created
--   ARGV[2] lease token  ARGV[3] the channel's code  ARGV[4..12] VALUES
--   ARGV[13..] CASE's args
--   Returns 1 (or {1, the case's reply}) once written; 0 when the lease was lost
--   (nothing done).
-- ARGV[1] 'erase' (sessions.py): drops every part but the rate counter while the lease is
--   this token's.  KEYS[1] the phone's state  KEYS[2] lease  ARGV[2] lease token
--   Returns 1, or -1 (lease lost).
-- ARGV[1] 'receipts' (sessions.py): KEYS[1] the phone's state  ARGV[2] the channel's code
--   ARGV[3] receipts  ARGV[4] their TTL (s). Returns 1.
-- ARGV[1] 'create' (cases.py): KEYS CASE's keys  ARGV[2..] CASE's args
--   Returns the case's reply.
-- ARGV[1] 'profile' (phone_state.py): KEYS[1] the phone's state  ARGV[2] language ('' keeps
--   it)  ARGV[3] TTL (s)  ARGV[4] '1' to opt out. An opted-out profile never expires: the
--   opt-out holds until START. Returns 1.
-- ARGV[1] 'forget' (phone_state.py): KEYS[1] the phone's state. Blanks every kept answer's
--   text in the receipts of every channel and the USSD session and input history they
--   hold (the typed answers are in it); keeps the message digests (retries stay
--   idempotent) and every expiry. Returns 1.
-- ARGV[1] 'unseen' (phone_state.py): KEYS[1] the phone's state  ARGV[2] entries to add
--   (' key key')  ARGV[3] TTL (s). Returns 1.

local RS, US = '\30', '\31'
local ORDER = {'p', 'd', 'su', 'sm', 'sv', 'ru', 'rm', 'rv', 'x', 'n', 'b'}
local NOW = tonumber(redis.call('TIME')[1])
local DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz'

local function b36(n)
  local s = ''
  repeat
    local d = n % 36
    s = string.sub(DIGITS, d + 1, d + 1) .. s
    n = math.floor(n / 36)
  until n == 0
  return s
end

-- parts[name] = {payload, expiry epoch second or false}; expired parts left out
local function load_parts(key)
  local parts, gone = {}, {}
  local raw = redis.call('GET', key)
  if not raw then return parts end
  for name, at, payload in string.gmatch(raw, '([^\30\31]+)\31([^\30\31]*)\31([^\30]*)') do
    local expiry = at ~= '' and tonumber(at, 36) or false
    if expiry and expiry <= NOW then
      gone[name] = payload
    else
      parts[name] = {payload, expiry}
    end
  end
  local d = parts['d']
  if d and string.sub(d[1], 1, 1) == '=' then
    local source = string.sub(d[1], 2)
    if not parts[source] then
      if gone[source] then d[1] = gone[source] else parts['d'] = nil end
    end
  end
  return parts
end

-- ttl: seconds, 0 for no expiry; payload nil deletes the part
local function set_part(parts, name, payload, ttl)
  local d = parts['d']
  if name ~= 'd' and d and d[1] == '=' .. name then
    local old = parts[name]
    if old then d[1] = old[1] else parts['d'] = nil end
  end
  if payload == nil then
    parts[name] = nil
  else
    parts[name] = {payload, tonumber(ttl) > 0 and NOW + tonumber(ttl) or false}
  end
end

local function payload_of(parts, name)
  local part = parts[name]
  return part and part[1] or false
end

local function resolved_draft(parts)
  local d = parts['d']
  if not d then return false end
  if string.sub(d[1], 1, 1) == '=' then return payload_of(parts, string.sub(d[1], 2)) end
  return d[1]
end

local function save_parts(key, parts)
  local out, top, forever = {}, 0, false
  for _, name in ipairs(ORDER) do
    local part = parts[name]
    if part then
      local at = part[2]
      out[#out + 1] = name .. US .. (at and b36(at) or '') .. US .. part[1]
      if not at then forever = true elseif at > top then top = at end
    end
  end
  if #out == 0 then
    redis.call('DEL', key)
  elseif forever then
    redis.call('SET', key, table.concat(out, RS))
  else
    redis.call('SET', key, table.concat(out, RS), 'EXAT', top)
  end
end

-- One of VALUES: '' keeps the part, '-' deletes it.
local function put(parts, name, value, ttl)
  if value == '-' then
    set_part(parts, name, nil, 0)
  elseif value ~= '' then
    set_part(parts, name, value, ttl)
  end
end

-- VALUES from ARGV[first..first + 8], written to the phone's state.
local function write_values(parts, channel, first)
  put(parts, 's' .. channel, ARGV[first], ARGV[first + 1])
  put(parts, 'p', ARGV[first + 2], ARGV[first + 3])
  local draft = ARGV[first + 4]
  if draft == '=' then draft = '=s' .. channel end
  put(parts, 'd', draft, ARGV[first + 5])
  put(parts, 'r' .. channel, ARGV[first + 6], ARGV[first + 7])
  if ARGV[first + 8] == '-' then set_part(parts, 'x', nil, 0) end
  save_parts(KEYS[1], parts)
end

-- Counts a message against `limit` (part n, a fixed window of `window` s); a free-text
-- `body` that repeats the phone's previous one also counts against `repeat_limit` (part b
-- holds that body's digest and count); `rate` holds the four ('' for no limit). Returns
-- limited, newly (1 for the message that crossed the limit, else 0), counted.
local function count_message(parts, rate)
  if rate == '' then return false, 0, false end
  local limit, window, repeat_limit, body = string.match(rate, '^(%d+) (%d+) (%d+) (.*)$')
  limit, window, repeat_limit = tonumber(limit), tonumber(window), tonumber(repeat_limit)
  if limit <= 0 then return false, 0, false end
  local counter = parts['n']
  local count = (counter and tonumber(counter[1]) or 0) + 1
  local window_end = counter and counter[2] or (NOW + window)
  if count <= limit and repeat_limit > 0 and body ~= '' then
    local last = payload_of(parts, 'b')
    local repeats = 1
    if last and string.sub(last, 1, #body + 1) == body .. ':' then
      repeats = tonumber(string.sub(last, #body + 2)) + 1
    end
    parts['b'] = {body .. ':' .. repeats, NOW + window}
    if repeats > repeat_limit then
      -- a loop: the phone is over the limit for the rest of the window
      count = limit + 1
    end
  end
  parts['n'] = {tostring(count), window_end}
  if count > limit then
    return true, count == limit + 1 and 1 or 0, true
  end
  return false, 0, true
end

-- Appends one audit event to the shard's stream; `trail` (or false) gets its id.
local function audit(stream, trail, ref, actor, action, at, detail)
  local id = redis.call('XADD', stream, '*', 'reference', ref, 'actor', actor,
    'action', action, 'at', at, 'detail', detail)
  if trail then redis.call('APPEND', trail, id .. ' ') end
  return id
end

-- CASE, from its `keys` and `args` (as listed above); returns its reply.
local function create_case(keys, args)
  local ttl = tonumber(args[1])
  if ttl > 0 then
    local existing = redis.call('GET', keys[1])
    if existing then return {'existing', existing} end
  end
  local first_candidate = 10
  local chosen = nil
  for i = first_candidate, #args do
    if redis.call('EXISTS', keys[11 + (i - first_candidate) * 3]) == 0 then
      chosen = i
      break
    end
  end
  if not chosen then return {'taken'} end
  local ref = args[chosen]
  local case_key = keys[11 + (chosen - first_candidate) * 3]
  local answers_key = keys[12 + (chosen - first_candidate) * 3]
  local trail_key = keys[13 + (chosen - first_candidate) * 3]
  local seq = redis.call('INCR', keys[2])
  -- Scores stay below 2^53 (exact in a double): rank * 2^51 + ms * 1024 + seq bits + shard.
  local tri = tonumber(args[8]) + (seq % 64) * 16
  local score = string.format('%.0f', tonumber(args[2]) * 2251799813685248 + tri)
  local flat = {'reference', ref, 'tri', string.format('%.0f', tri)}
  for field, value in pairs(cjson.decode(args[5])) do
    flat[#flat + 1] = field
    flat[#flat + 1] = value
  end
  redis.call('HSET', case_key, unpack(flat))
  redis.call('SET', answers_key, args[9])
  for i = 3, 6 do redis.call('ZADD', keys[i], score, ref) end
  redis.call('SADD', keys[7], ref)
  redis.call('HINCRBY', keys[8], args[3], 1)
  audit(keys[9], trail_key, ref, 'migrant', 'created', args[4], args[6])
  redis.call('XADD', keys[10], '*', 'reference', ref, unpack(cjson.decode(args[7])))
  if ttl > 0 then redis.call('SET', keys[1], ref, 'EX', ttl) end
  return {'created', ref}
end

local function step()
  local parts = load_parts(KEYS[1])
  local channel = ARGV[6]
  local receipts = payload_of(parts, 'r' .. channel)
  if ARGV[4] ~= '' and receipts and string.find(receipts, '\28' .. ARGV[4], 1, true) then
    return {3, receipts, payload_of(parts, 's' .. channel)}
  end
  if redis.call('EXISTS', KEYS[2], KEYS[3]) > 0 then
    return {0}
  end
  local limited, newly, counted = count_message(parts, ARGV[5])
  if limited then
    save_parts(KEYS[1], parts)
    return {2, newly}
  end
  local v = {payload_of(parts, 's' .. channel), payload_of(parts, 'p'), resolved_draft(parts),
    receipts, payload_of(parts, 'x')}
  if ARGV[7] == '' or (v[1] or '') .. '\0' .. (v[2] or '') .. '\0' .. (v[3] or '') .. '\0'
      .. (v[4] or '') .. '\0' .. (v[5] or '') ~= ARGV[7] then
    if counted then save_parts(KEYS[1], parts) end
    redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
    return {1, v[1], v[2], v[3], v[4], v[5]}
  end
  local created = nil
  if #KEYS > 3 then created = create_case({unpack(KEYS, 4)}, {unpack(ARGV, 17)}) end
  write_values(parts, channel, 8)
  return {4, created}
end

local function commit()
  if redis.call('GET', KEYS[2]) ~= ARGV[2] then
    return 0
  end
  local parts = load_parts(KEYS[1])
  local created = nil
  if #KEYS > 2 then created = create_case({unpack(KEYS, 3)}, {unpack(ARGV, 13)}) end
  write_values(parts, ARGV[3], 4)
  redis.call('DEL', KEYS[2])
  if created then return {1, created} end
  return 1
end

local function erase()
  if redis.call('GET', KEYS[2]) ~= ARGV[2] then
    return -1
  end
  local parts = load_parts(KEYS[1])
  for name in pairs(parts) do
    if name ~= 'n' then parts[name] = nil end
  end
  save_parts(KEYS[1], parts)
  return 1
end

local function save_receipts()
  local parts = load_parts(KEYS[1])
  set_part(parts, 'r' .. ARGV[2], ARGV[3], ARGV[4])
  save_parts(KEYS[1], parts)
  return 1
end

local function update_profile()
  local parts = load_parts(KEYS[1])
  local old = string.gsub(payload_of(parts, 'p') or '', '%?', '')
  local out = string.sub(old, -1) == '!'
  local language = out and string.sub(old, 1, -2) or old
  if ARGV[2] ~= '' then language = ARGV[2] end
  if ARGV[4] == '1' then out = true end
  if out then
    set_part(parts, 'p', language .. '!', 0)
  else
    set_part(parts, 'p', language ~= '' and language or '?', ARGV[3])
  end
  save_parts(KEYS[1], parts)
  return 1
end

local function forget_answers()
  local parts = load_parts(KEYS[1])
  local changed = false
  for _, name in ipairs({'ru', 'rm', 'rv'}) do
    local part = parts[name]
    if part then
      local raw = part[1]
      local first = string.find(raw, '\28', 1, true)
      local head = first and string.sub(raw, 1, first - 1) or raw
      local answers = first and string.sub(raw, first) or ''
      local pending = string.match(head, '^[^\29]*\29[^\29]*\29(.*)$') or ''
      answers = string.gsub(answers, '\28(' .. string.rep('%x', 10) .. '[01])[^\28]*', '\28%1')
      part[1] = '\29\29' .. pending .. answers
      changed = true
    end
  end
  if changed then save_parts(KEYS[1], parts) end
  return 1
end

local function mark_unseen()
  local parts = load_parts(KEYS[1])
  set_part(parts, 'x', (payload_of(parts, 'x') or '') .. ARGV[2], ARGV[3])
  save_parts(KEYS[1], parts)
  return 1
end

local operation = ARGV[1]
if operation == 'step' then return step() end
if operation == 'commit' then return commit() end
if operation == 'erase' then return erase() end
if operation == 'receipts' then return save_receipts() end
if operation == 'create' then return create_case(KEYS, {unpack(ARGV, 2)}) end
if operation == 'profile' then return update_profile() end
if operation == 'forget' then return forget_answers() end
if operation == 'unseen' then return mark_unseen() end
return redis.error_reply('phone.lua: unknown operation ' .. tostring(operation))
