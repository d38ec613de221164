"""A phone's conversation state in Redis: one atomic read and one atomic write a message.

The state is one compact value per phone (`bot.store.phone_state`): session and
receipts per channel, draft, profile, rate counter and marks as parts of it.

`BEGIN` answers a retried message from the phone's receipts without further
ado; otherwise it takes the phone's lease, counts the message against the
rate limit and reads session, profile, draft and receipts (one value). `COMMIT` writes
them back only while the lease is still held (a writer whose lease expired
cannot overwrite a newer step) and releases it. Together they make each
read-modify-write atomic in two round trips; STEP does it in one when this
process knows the state. Every key a script touches is the phone's (the tag
of its case shard: one Cluster slot).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from redis.exceptions import NoScriptError

from bot.store import keys, phone_state
from bot.store.scripts import Script
from bot.types import Channel

LEASE_MS = 3000
"""Twice the webhooks' hop deadline: a hop never holds a phone longer."""
RATE_WINDOW_SECONDS = 600
DELETE = "-"
KEEP = ""
NO_EXPIRY = 0

RATE_CHECK = r"""
local limit = tonumber(ARGV[4])
local limited, newly, counted = false, 0, false
if limit > 0 then
  counted = true
  local window = tonumber(ARGV[5])
  local counter = parts['n']
  local count = (counter and tonumber(counter[1]) or 0) + 1
  local window_end = counter and counter[2] or (NOW + window)
  local repeat_limit, body = tonumber(ARGV[6]), ARGV[7]
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
    limited = true
    if count == limit + 1 then newly = 1 end
  end
end
"""
"""Counts a message against ARGV[4] (part `n`, a fixed window of ARGV[5] s); a free-text
body (ARGV[7]) that repeats the phone's previous one also counts against ARGV[6] (part
`b` holds that body's digest and count)."""

LOAD = r"""
local parts = load_parts(KEYS[1])
local channel = ARGV[8]
local receipts = payload_of(parts, 'r' .. channel)
"""
"""Reads the phone's state (KEYS[1])."""

ANSWERED_CHECK = r"""
if ARGV[3] ~= '' and receipts and string.find(receipts, '\28' .. ARGV[3], 1, true) then
  return {3, receipts, payload_of(parts, 's' .. channel)}
end
"""

STATE = r"""
local function state_values()
  return {payload_of(parts, 's' .. channel), payload_of(parts, 'p'), resolved_draft(parts),
          receipts, payload_of(parts, 'x')}
end
"""

WRITE_VALUES = r"""
local function put(name, value, ttl)
  if value == '-' then
    set_part(parts, name, nil, 0)
  elseif value ~= '' then
    set_part(parts, name, value, ttl)
  end
end
local function write_values(first)
  put('s' .. channel, ARGV[first], ARGV[first + 1])
  put('p', ARGV[first + 2], ARGV[first + 3])
  local draft = ARGV[first + 4]
  if draft == '=' then draft = '=s' .. channel end
  put('d', draft, ARGV[first + 5])
  put('r' .. channel, ARGV[first + 6], ARGV[first + 7])
  if ARGV[first + 8] == '-' then set_part(parts, 'x', nil, 0) end
  save_parts(KEYS[1], parts)
end
"""
"""Writes session, profile, draft, receipts from ARGV[first..first+7], then clears the
unseen mark when ARGV[first+8] is '-'."""

BEGIN_DOC = """
-- KEYS[1] the phone's state  KEYS[2] lease  KEYS[3] abandoned mark of this lease token
-- ARGV[1] lease token  ARGV[2] lease duration (ms)  ARGV[3] message digest ('' for none)
-- ARGV[4] rate limit (0: none)  ARGV[5] rate window (s)
-- ARGV[6] limit of one free-text body sent again and again in a row
-- ARGV[7] digest of this message's body ('' when it is menu keys: not a loop's sign)
-- ARGV[8] the channel's code (session part 's' .. code, receipts 'r' .. code)
"""

BEGIN = Script(
    "begin_step",
    phone_state.LUA_PARTS + BEGIN_DOC + """
-- Returns {3, receipts, session} when the receipts already answer this message (no lease
-- taken; the session, to render again an answer stored as its screen);
-- {0} while another writer holds the lease (or this token was given up on); {2, newly}
-- over the rate limit (no lease kept; newly 1 for the message that crossed it); else
-- {1, session, profile, draft, receipts, unseen} (false where absent), lease taken.
""" + LOAD + ANSWERED_CHECK + """
if redis.call('EXISTS', KEYS[3]) == 1 then
  return {0}
end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {0}
end
""" + RATE_CHECK + STATE + """
if counted then save_parts(KEYS[1], parts) end
if limited then
  redis.call('DEL', KEYS[2])
  return {2, newly}
end
local v = state_values()
return {1, v[1], v[2], v[3], v[4], v[5]}
""",
)

COMMIT_CHECKS = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
local parts = load_parts(KEYS[1])
local channel = ARGV[2]
""" + WRITE_VALUES
"""COMMIT up to its write: the lease check (0 when lost), the state read."""

COMMIT = Script(
    "commit_step",
    phone_state.LUA_PARTS + """
-- KEYS[1] the phone's state  KEYS[2] lease
-- ARGV[1] lease token  ARGV[2] the channel's code
-- ARGV[3] session   ARGV[4] its TTL (s)    ARGV[5] profile   ARGV[6] its TTL
-- ARGV[7] draft ('=': the session written here)   ARGV[8] its TTL
-- ARGV[9] receipts  ARGV[10] its TTL
-- ARGV[11] '-' once the phone has been told what it was never told, else ''
-- A value of '' keeps the stored one, '-' deletes it; a TTL of 0 means no expiry.
-- Returns 1 when saved, 0 when the lease was lost (nothing written).
""" + COMMIT_CHECKS + """
write_values(3)
redis.call('DEL', KEYS[2])
return 1
""",
)

STEP_DOC = """
-- ARGV[9] SHA-1 of the state the step was computed from: session, profile, draft,
--         receipts and unseen ('' where absent) joined by NUL
-- ARGV[10..18] what to write, as COMMIT's ARGV[3..11]
-- One round trip for a step computed from the state this process saw last.
-- Returns {4} once written; {3, receipts, session} when the receipts already answer it;
-- {0} while a lease is held (or this token was given up on); {2, newly} over the rate
-- limit; {1, session, profile, draft, receipts, unseen} when the state is not the one the
-- step was computed from: nothing written, the lease taken for a step computed afresh.
"""

STEP_CHECKS = LOAD + ANSWERED_CHECK + """
if redis.call('EXISTS', KEYS[2], KEYS[3]) > 0 then
  return {0}
end
""" + RATE_CHECK + STATE + WRITE_VALUES + """
if limited then
  save_parts(KEYS[1], parts)
  return {2, newly}
end
local v = state_values()
local state = (v[1] or '') .. '\\0' .. (v[2] or '') .. '\\0' .. (v[3] or '') .. '\\0'
  .. (v[4] or '') .. '\\0' .. (v[5] or '')
if redis.sha1hex(state) ~= ARGV[9] then
  if counted then save_parts(KEYS[1], parts) end
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  return {1, v[1], v[2], v[3], v[4], v[5]}
end
"""
"""STEP up to its write: every check, and the fresh state when it is not the expected one."""

STEP = Script(
    "step_in_one",
    phone_state.LUA_PARTS + BEGIN_DOC + STEP_DOC + STEP_CHECKS + """
write_values(10)
return {4}
""",
)


RELEASE = Script(
    "release_lease",
    """
-- KEYS[1] lease  KEYS[2] abandoned mark of the token
-- ARGV[1] lease token  ARGV[2] lease duration (ms)
-- After a step that failed half-way: releases the lease if ours, else marks the token
-- abandoned so that its BEGIN, should a slow Redis run it later, takes nothing.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 0
""",
)

ERASE_PHONE = Script(
    "erase_phone",
    phone_state.LUA_PARTS + """
-- KEYS[1] the phone's state  KEYS[2] lease
-- ARGV[1] lease token
-- Drops every part of the state but the rate counter while the lease is ours; returns 1,
-- or -1 (lease lost).
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return -1
end
local parts = load_parts(KEYS[1])
for name in pairs(parts) do
  if name ~= 'n' then parts[name] = nil end
end
save_parts(KEYS[1], parts)
return 1
""",
)


@dataclass(frozen=True)
class PhoneKeys:
    pseudonym: str
    channel: str
    """The channel's code in the state value (`phone_state.CHANNEL_CODES`)."""
    state: str
    lease: str
    abandoned: str = ""
    """The abandoned mark of a lease token, but the token (`keys.abandoned_lease`)."""

    @classmethod
    def of(cls, pseudonym: str, channel: str, *, cluster: bool = False) -> PhoneKeys:
        """`cluster` is not used (the keys are the same on every deployment)."""
        return cls(
            pseudonym=pseudonym,
            channel=phone_state.CHANNEL_CODES[Channel(channel)],
            state=keys.phone_state(pseudonym),
            lease=keys.lease(pseudonym),
            abandoned=keys.abandoned_lease(pseudonym, ""),
        )


class Begun(IntEnum):
    BUSY = 0
    ACQUIRED = 1
    RATE_LIMITED = 2
    ANSWERED = 3
    WRITTEN = 4
    """STEP only: the step was written in its one round trip."""


@dataclass(frozen=True)
class PhoneState:
    """A phone's stored values as raw JSON (None where absent), as a script read them."""

    session: str | None = None
    profile: str | None = None
    draft: str | None = None
    receipts: str | None = None
    unseen: str | None = None
    """What the phone was never told (see `mark_unseen`)."""
    decoded: Any = field(default=None, compare=False, repr=False)
    """What the conversation made of `session` and `receipts` when it wrote them (its own
    objects, opaque here): not decoded again. Not part of the state nor of its digest."""

    def digest(self) -> str:
        """What STEP compares: SHA-1 of the five values ('' where absent) joined by NUL."""
        joined = (f"{self.session or ''}\0{self.profile or ''}\0{self.draft or ''}\0"
                  f"{self.receipts or ''}\0{self.unseen or ''}")
        return hashlib.sha1(joined.encode()).hexdigest()  # noqa: S324 (a checksum, not security)

    def after(self, commit: Commit, decoded: Any = None) -> PhoneState:
        """The state once `commit` is written (`decoded`: its session and receipts as the
        writer has them)."""
        return PhoneState(
            _written(self.session, commit.session_json),
            _written(self.profile, commit.profile_json),
            commit.session_json if commit.draft_json == phone_state.SAME_AS_SESSION
            else _written(self.draft, commit.draft_json),
            _written(self.receipts, commit.receipts_json),
            _written(self.unseen, commit.unseen),
            decoded,
        )


def _written(before: str | None, value: str) -> str | None:
    return before if value == KEEP else None if value == DELETE else value


@dataclass(frozen=True)
class Loaded:
    outcome: Begun
    session: str | None = None
    profile: str | None = None
    draft: str | None = None
    receipts: str | None = None
    unseen: str | None = None
    newly_limited: bool = False
    """RATE_LIMITED only: this message took the phone over the limit."""

    @property
    def acquired(self) -> bool:
        return self.outcome is Begun.ACQUIRED

    @property
    def state(self) -> PhoneState:
        return PhoneState(self.session, self.profile, self.draft, self.receipts, self.unseen)


@dataclass(frozen=True)
class RateLimit:
    """How a message counts against its phone's rate limit (SMS; USSD is not limited).

    Every message counts against `limit`; a free-text body (`body_digest` set)
    that repeats the phone's previous one also counts against `repeat_limit`:
    the same words again and again put the phone over the limit for the rest of
    the window.
    """

    limit: int = 0
    repeat_limit: int = 0
    body_digest: str = ""


NO_RATE_LIMIT = RateLimit()


def _begin_call(phone_keys: PhoneKeys, token: str, digest: str,
                rate: RateLimit) -> tuple[list[str], list[str | int]]:
    return (
        [phone_keys.state, phone_keys.lease, phone_keys.abandoned + token],
        [token, LEASE_MS, digest, rate.limit, RATE_WINDOW_SECONDS, rate.repeat_limit,
         rate.body_digest, phone_keys.channel],
    )


async def begin(redis: Any, phone_keys: PhoneKeys, token: str, *, digest: str = "",
                rate: RateLimit = NO_RATE_LIMIT) -> Any:
    """BEGIN on its own (no pipeline: one command is cheaper sent plainly)."""
    return await BEGIN.run(redis, *_begin_call(phone_keys, token, digest, rate))


def queue_begin(pipe: Any, phone_keys: PhoneKeys, token: str, *, digest: str = "",
                rate: RateLimit = NO_RATE_LIMIT) -> None:
    BEGIN.queue(pipe, *_begin_call(phone_keys, token, digest, rate))


def queue_begin_body(pipe: Any, phone_keys: PhoneKeys, token: str, *, digest: str = "",
                     rate: RateLimit = NO_RATE_LIMIT) -> None:
    """As `queue_begin`, sending the script's body (after a NOSCRIPT answer)."""
    BEGIN.queue_body(pipe, *_begin_call(phone_keys, token, digest, rate))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


_WRITTEN = Loaded(Begun.WRITTEN)
_BUSY = Loaded(Begun.BUSY)


def begin_result(raw: list[Any]) -> Loaded:
    outcome = Begun(int(raw[0]))
    if outcome is Begun.WRITTEN:
        return _WRITTEN  # most hops: one value, not one a hop
    if outcome is Begun.ANSWERED:
        return Loaded(outcome, receipts=_text(raw[1]), session=_text(raw[2]))
    if outcome is Begun.RATE_LIMITED:
        return Loaded(outcome, newly_limited=int(raw[1]) == 1)
    if outcome is Begun.BUSY:
        return _BUSY
    session, profile, draft, receipts, unseen = (_text(value) for value in raw[1:6])
    return Loaded(outcome, session=session, profile=profile, draft=draft, receipts=receipts,
                  unseen=unseen)


@dataclass
class Commit:
    session_json: str = KEEP
    session_ttl: int = 1
    profile_json: str = KEEP
    profile_ttl: int = NO_EXPIRY
    draft_json: str = KEEP
    draft_ttl: int = 1
    receipts_json: str = KEEP
    receipts_ttl: int = 1
    unseen: str = KEEP
    """DELETE once the phone has been told what it was never told."""


def _commit_values(commit: Commit) -> list[str | int]:
    return [
        commit.session_json, max(commit.session_ttl, 1),
        commit.profile_json, max(commit.profile_ttl, NO_EXPIRY),
        commit.draft_json, max(commit.draft_ttl, 1),
        commit.receipts_json, max(commit.receipts_ttl, 1),
        DELETE if commit.unseen == DELETE else KEEP,
    ]


def _commit_call(phone_keys: PhoneKeys, token: str, commit: Commit) -> tuple[list[str],
                                                                             list[str | int]]:
    return ([phone_keys.state, phone_keys.lease],
            [token, phone_keys.channel, *_commit_values(commit)])


def queue_commit(pipe: Any, phone_keys: PhoneKeys, token: str, commit: Commit) -> None:
    COMMIT.queue(pipe, *_commit_call(phone_keys, token, commit))


async def commit(redis: Any, phone_keys: PhoneKeys, token: str, values: Commit) -> Any:
    """COMMIT on its own, when the turn has no effect on cases to send with it."""
    return await COMMIT.run(redis, *_commit_call(phone_keys, token, values))


async def commit_by_body(redis: Any, phone_keys: PhoneKeys, token: str, commit: Commit) -> Any:
    """The commit alone, sending the script's body (after a NOSCRIPT answer)."""
    script_keys, args = _commit_call(phone_keys, token, commit)
    return await redis.eval(COMMIT.source, len(script_keys), *script_keys, *args)


def step_call(phone_keys: PhoneKeys, token: str, *, expected: str, digest: str,
              rate: RateLimit, values: Commit) -> tuple[list[str], list[str | int]]:
    begin_keys, begin_args = _begin_call(phone_keys, token, digest, rate)
    return begin_keys, [*begin_args, expected, *_commit_values(values)]


def commit_call(phone_keys: PhoneKeys, token: str,
                values: Commit) -> tuple[list[str], list[str | int]]:
    return _commit_call(phone_keys, token, values)


async def step(redis: Any, phone_keys: PhoneKeys, token: str, *, expected: str,
               digest: str, rate: RateLimit, values: Commit) -> Loaded:
    """STEP: write `values` in one round trip if the state is still the `expected` one."""
    script_keys, args = step_call(phone_keys, token, expected=expected, digest=digest,
                                  rate=rate, values=values)
    try:  # STEP.run's own two lines: one coroutine fewer on every hop
        raw = await redis.evalsha(STEP.sha, len(script_keys), *script_keys, *args)
    except NoScriptError:
        raw = await redis.eval(STEP.source, len(script_keys), *script_keys, *args)
    return begin_result(raw)


def queue_erase_phone(pipe: Any, phone_keys: PhoneKeys, token: str) -> None:
    """Queue the erasure of the phone's state (the migrant's erasure), lease kept."""
    ERASE_PHONE.queue(pipe, [phone_keys.state, phone_keys.lease], [token])


SAVE_RECEIPTS = Script(
    "save_receipts_part",
    phone_state.LUA_PARTS + """
-- KEYS[1] the phone's state  ARGV[1] receipts part name  ARGV[2] receipts  ARGV[3] TTL (s)
local parts = load_parts(KEYS[1])
set_part(parts, ARGV[1], ARGV[2], ARGV[3])
save_parts(KEYS[1], parts)
return 1
""",
)


async def save_receipts(redis: Any, phone_keys: PhoneKeys, receipts_json: str, ttl: int) -> None:
    """Correct the receipts after the fact (an answer changed once effects were applied)."""
    await SAVE_RECEIPTS.run(redis, [phone_keys.state],
                            ["r" + phone_keys.channel, receipts_json, max(ttl, 1)])


async def release(redis: Any, phone_keys: PhoneKeys, token: str) -> None:
    await RELEASE.run(redis, [phone_keys.lease, keys.abandoned_lease(phone_keys.pseudonym, token)],
                      [token, LEASE_MS])


async def mark_unseen(redis: Any, phone_keys: PhoneKeys, entries: list[str], ttl: int) -> None:
    """Remember what a phone was never told (cases made while it got the fallback).

    Appended, not set: two hops may each leave one; each entry is resolved, shown and
    cleared at the phone's next contact (BEGIN and STEP read it with the session).
    """
    await phone_state.mark_unseen(redis, pseudonym=phone_keys.pseudonym, entries=entries,
                                  ttl=ttl)


def commit_saved(raw: Any) -> bool:
    return int(raw) == 1
