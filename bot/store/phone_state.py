"""A phone's stored state: one compact string value under the phone's hash tag.

Session and receipts per channel, draft, profile, rate counter, the repeat
mark and the unseen mark are one value of parts, each with its own logical
expiry, checked by the Lua code below that every script touching a phone's
state shares (the key's TTL is the latest part's). A part is
`name US expiry US payload` (expiry: epoch second in base 36, empty for
none), parts joined by RS. Names:

- `p` profile, `d` draft, `x` what the phone was never told (unseen cases),
  `n` rate counter, `b` the last free-text body's digest and its repeats;
- `s<c>` session and `r<c>` receipts per channel (`c`: CHANNEL_CODES).

A draft equal to the session that wrote it is stored as `=s<c>` (the answers
are not kept twice); when that session changes, ends or expires, the draft
takes the session's last payload (Lua: `set_part`, `load_parts`).

The lease and its abandoned marks stay keys of their own (they live seconds).
The value and the lease are under the tag of the phone's case shard
(`keys.phone_state`).
"""

from __future__ import annotations

import time
from typing import Any

from bot.store import keys
from bot.store.scripts import Script
from bot.types import Channel

RS = "\x1e"
US = "\x1f"
CHANNEL_CODES = {Channel.USSD: "u", Channel.SMS: "m", Channel.VOICE: "v"}
SAME_AS_SESSION = "="
"""A draft value meaning: the session written in the same commit (`=s<c>` once stored)."""

LUA_PARTS = r"""
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
-- parts[name] = {payload, expiry epoch second or false}; stale: a part had expired
local function load_parts(key)
  local parts, gone, stale = {}, {}, false
  local raw = redis.call('GET', key)
  if not raw then return parts, false, false end
  for name, at, payload in string.gmatch(raw, '([^\30\31]+)\31([^\30\31]*)\31([^\30]*)') do
    local expiry = at ~= '' and tonumber(at, 36) or false
    if expiry and expiry <= NOW then
      gone[name], stale = payload, true
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
  return parts, true, stale
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
"""
"""Lua shared by every script that reads or writes a phone's state value."""

LUA_PROFILE = r"""
-- profile payload: language, then '!' when opted out (e.g. 'fr', 'fr!', '!')
local function opted_out_profile(payload)
  payload = payload or ''
  if string.sub(payload, -1) == '!' then return payload end
  return payload .. '!'
end
"""

UPDATE_PROFILE = Script(
    "update_profile_part",
    LUA_PARTS + LUA_PROFILE + r"""
-- KEYS[1] the phone's state
-- ARGV[1] language ('' keeps it)  ARGV[2] TTL (s)  ARGV[3] '1' to opt out
-- An opted-out profile never expires: the opt-out holds until START.
local parts = load_parts(KEYS[1])
local old = string.gsub(payload_of(parts, 'p') or '', '%?', '')
local out = string.sub(old, -1) == '!'
local language = out and string.sub(old, 1, -2) or old
if ARGV[1] ~= '' then language = ARGV[1] end
if ARGV[3] == '1' then out = true end
if out then
  set_part(parts, 'p', language .. '!', 0)
else
  set_part(parts, 'p', language ~= '' and language or '?', ARGV[2])
end
save_parts(KEYS[1], parts)
return 1
""",
)

FORGET_ANSWERS = Script(
    "forget_answers_part",
    LUA_PARTS + r"""
-- KEYS[1] the phone's state
-- Blanks every kept answer's text in the receipts of every channel and drops the USSD
-- session and input history (the typed answers are in it); keeps the message digests
-- (retries stay idempotent) and every expiry.
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
""",
)

MARK_UNSEEN = Script(
    "mark_unseen_part",
    LUA_PARTS + r"""
-- KEYS[1] the phone's state  ARGV[1] entries to add (' key key')  ARGV[2] TTL (s)
local parts = load_parts(KEYS[1])
set_part(parts, 'x', (payload_of(parts, 'x') or '') .. ARGV[1], ARGV[2])
save_parts(KEYS[1], parts)
return 1
""",
)


def parse(raw: str | bytes | None, now: float | None = None) -> dict[str, str]:
    """The live parts of a stored value (expired ones left out, a `=` draft resolved)."""
    if not raw:
        return {}
    text = raw.decode() if isinstance(raw, bytes) else raw
    clock = time.time() if now is None else now
    parts: dict[str, str] = {}
    gone: dict[str, str] = {}
    for part in text.split(RS):
        name, at, payload = part.split(US, 2)
        if at and int(at, 36) <= clock:
            gone[name] = payload
        else:
            parts[name] = payload
    draft = parts.get("d")
    if draft is not None and draft.startswith(SAME_AS_SESSION):
        source = draft[1:]
        resolved = parts.get(source, gone.get(source))
        if resolved is None:
            del parts["d"]
        else:
            parts["d"] = resolved
    return parts


def expiries(raw: str | bytes | None) -> dict[str, int | None]:
    """Each stored part's expiry (epoch second; None: never), expired ones included."""
    if not raw:
        return {}
    text = raw.decode() if isinstance(raw, bytes) else raw
    found: dict[str, int | None] = {}
    for part in text.split(RS):
        name, at, _ = part.split(US, 2)
        found[name] = int(at, 36) if at else None
    return found


def session_part(channel: Channel | str) -> str:
    return "s" + CHANNEL_CODES[Channel(channel)]


def receipts_part(channel: Channel | str) -> str:
    return "r" + CHANNEL_CODES[Channel(channel)]


async def read_parts(redis: Any, pseudonym: str) -> dict[str, str]:
    """Every live part of a phone's state (admin, worker and tests; not the hot path)."""
    return parse(await redis.get(keys.phone_state(pseudonym)))


async def opted_out(redis: Any, pseudonym: str) -> bool:
    """Whether the phone opted out (STOP)."""
    profile = parse(await redis.get(keys.phone_state(pseudonym))).get("p")
    return profile is not None and profile.endswith("!")


async def update_profile(redis: Any, *, pseudonym: str, language: str = "", ttl: int,
                         opt_out: bool = False) -> None:
    """Set the phone's language ('' keeps it) or opt it out; an opt-out stays, without
    expiry."""
    await UPDATE_PROFILE.run(redis, [keys.phone_state(pseudonym)],
                             [language, max(ttl, 1), "1" if opt_out else "0"])


async def forget_answers(redis: Any, *, pseudonym: str) -> None:
    await FORGET_ANSWERS.run(redis, [keys.phone_state(pseudonym)], [])


async def mark_unseen(redis: Any, *, pseudonym: str, entries: list[str], ttl: int) -> None:
    await MARK_UNSEEN.run(redis, [keys.phone_state(pseudonym)],
                          ["".join(f" {entry}" for entry in entries), max(ttl, 1)])
