"""A phone's conversation state in Redis: one atomic read and one atomic write a message.

`BEGIN` answers a retried message from the phone's receipts without further
ado; otherwise it takes the phone's lease, counts the message against the
rate limit and reads session, profile, draft and receipts. `COMMIT` writes
them back only while the lease is still held (a writer whose lease expired
cannot overwrite a newer step) and releases it. Together they make each
read-modify-write atomic in two round trips. Every key a script touches is a
per-phone key (one hash tag, one Cluster slot).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from bot.store import keys
from bot.store.evalsha import ShaScript
from bot.types import Channel

LEASE_MS = 3000
"""Twice the webhooks' hop deadline: a hop never holds a phone longer."""
RATE_WINDOW_SECONDS = 600
DELETE = "-"
KEEP = ""
NO_EXPIRY = 0

RATE_CHECK = """
local limit = tonumber(ARGV[4])
local limited, newly = false, 0
if limit > 0 then
  local count = redis.call('INCR', KEYS[6])
  if count == 1 then redis.call('EXPIRE', KEYS[6], ARGV[5]) end
  local repeat_limit, body = tonumber(ARGV[6]), ARGV[7]
  if count <= limit and repeat_limit > 0 and body ~= '' then
    local last = redis.call('GET', KEYS[8])
    local repeats = 1
    if last and string.sub(last, 1, #body + 1) == body .. ':' then
      repeats = tonumber(string.sub(last, #body + 2)) + 1
    end
    redis.call('SET', KEYS[8], body .. ':' .. repeats, 'EX', ARGV[5])
    if repeats > repeat_limit then
      -- a loop: the phone is over the limit for the rest of the window
      count = limit + 1
      redis.call('SET', KEYS[6], count, 'KEEPTTL')
    end
  end
  if count > limit then
    limited = true
    if count == limit + 1 then newly = 1 end
  end
end
"""
"""Counts a message against ARGV[4]; a free-text body (ARGV[7]) that repeats the phone's
previous one also counts against ARGV[6] (KEYS[8] holds that body's digest and count)."""

BEGIN = ShaScript(
    "begin_step",
    """
-- KEYS[1] session  KEYS[2] profile  KEYS[3] draft  KEYS[4] receipts  KEYS[5] lease
-- KEYS[6] rate counter  KEYS[7] abandoned mark of this lease token
-- KEYS[8] the phone's last free-text body and its repeats  KEYS[9] what it was never told
-- ARGV[1] lease token  ARGV[2] lease duration (ms)  ARGV[3] message digest ('' for none)
-- ARGV[4] rate limit (0: none)  ARGV[5] rate window (s)
-- ARGV[6] limit of one free-text body sent again and again in a row
-- ARGV[7] digest of this message's body ('' when it is menu keys: not a loop's sign)
-- Returns {3, receipts} when the receipts already answer this message (no lease taken);
-- {0} while another writer holds the lease (or this token was given up on); {2, newly}
-- over the rate limit (no lease kept; newly 1 for the message that crossed it); else
-- {1, session, profile, draft, receipts, unseen} (false where absent), lease taken.
local receipts = redis.call('GET', KEYS[4])
if ARGV[3] ~= '' and receipts and string.find(receipts, '"' .. ARGV[3] .. '"', 1, true) then
  return {3, receipts}
end
if redis.call('EXISTS', KEYS[7]) == 1 then
  return {0}
end
if not redis.call('SET', KEYS[5], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {0}
end
""" + RATE_CHECK + """
if limited then
  redis.call('DEL', KEYS[5])
  return {2, newly}
end
local v = redis.call('MGET', KEYS[1], KEYS[2], KEYS[3], KEYS[9])
return {1, v[1], v[2], v[3], receipts, v[4]}
""",
)

WRITE_VALUES = """
for i = 1, 4 do
  local value, ttl = ARGV[first + 2 * i - 2], ARGV[first + 2 * i - 1]
  if value == '-' then
    redis.call('DEL', KEYS[i])
  elseif value ~= '' then
    if ttl == '0' then
      redis.call('SET', KEYS[i], value)
    else
      redis.call('SET', KEYS[i], value, 'EX', ttl)
    end
  end
end
if ARGV[first + 8] == '-' then redis.call('DEL', unseen_key) end
"""
"""Writes session, profile, draft, receipts from ARGV[first..first+7], then the unseen mark."""

COMMIT = ShaScript(
    "commit_step",
    """
-- KEYS[1] session  KEYS[2] profile  KEYS[3] draft  KEYS[4] receipts  KEYS[5] lease
-- KEYS[6] what the phone was never told
-- ARGV[1] lease token
-- ARGV[2] session JSON   ARGV[3] its TTL (s)    ARGV[4] profile JSON   ARGV[5] its TTL
-- ARGV[6] draft JSON     ARGV[7] its TTL        ARGV[8] receipts JSON  ARGV[9] its TTL
-- ARGV[10] '-' once the phone has been told what it was never told, else ''
-- A JSON of '' keeps the stored value, '-' deletes it; a TTL of 0 means no expiry.
-- Returns 1 when saved, 0 when the lease was lost (nothing written).
if redis.call('GET', KEYS[5]) ~= ARGV[1] then
  return 0
end
local first, unseen_key = 2, KEYS[6]
""" + WRITE_VALUES + """
redis.call('DEL', KEYS[5])
return 1
""",
)

STEP = ShaScript(
    "step_in_one",
    """
-- KEYS and ARGV[1..7] as BEGIN's
-- ARGV[8] SHA-1 of the state the step was computed from: session, profile, draft,
--         receipts and unseen ('' where absent) joined by NUL
-- ARGV[9..17] what to write, as COMMIT's ARGV[2..10]
-- One round trip for a step computed from the state this process saw last.
-- Returns {4} once written; {3, receipts} when the receipts already answer this message;
-- {0} while a lease is held (or this token was given up on); {2, newly} over the rate
-- limit; {1, session, profile, draft, receipts, unseen} when the state is not the one the
-- step was computed from: nothing written, the lease taken for a step computed afresh.
local receipts = redis.call('GET', KEYS[4])
if ARGV[3] ~= '' and receipts and string.find(receipts, '"' .. ARGV[3] .. '"', 1, true) then
  return {3, receipts}
end
if redis.call('EXISTS', KEYS[5], KEYS[7]) > 0 then
  return {0}
end
""" + RATE_CHECK + """
if limited then
  return {2, newly}
end
local v = redis.call('MGET', KEYS[1], KEYS[2], KEYS[3], KEYS[9])
local state = (v[1] or '') .. '\\0' .. (v[2] or '') .. '\\0' .. (v[3] or '') .. '\\0'
  .. (receipts or '') .. '\\0' .. (v[4] or '')
if redis.sha1hex(state) ~= ARGV[8] then
  redis.call('SET', KEYS[5], ARGV[1], 'PX', ARGV[2])
  return {1, v[1], v[2], v[3], receipts, v[4]}
end
local first, unseen_key = 9, KEYS[9]
""" + WRITE_VALUES + """
return {4}
""",
)

RELEASE = ShaScript(
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

ERASE_PHONE = ShaScript(
    "erase_phone",
    """
-- KEYS[1] lease  KEYS[2..] every other per-phone key (sessions, profile, draft, receipts)
-- ARGV[1] lease token
-- Deletes them while the lease is ours; returns how many existed, or -1 (lease lost).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
return redis.call('DEL', unpack(KEYS, 2))
""",
)


@dataclass(frozen=True)
class PhoneKeys:
    pseudonym: str
    session: str
    profile: str
    draft: str
    receipts: str
    lease: str
    rate: str
    repeats: str
    unseen: str

    @classmethod
    def of(cls, pseudonym: str, channel: str) -> PhoneKeys:
        return cls(
            pseudonym=pseudonym,
            session=keys.session(pseudonym, channel),
            profile=keys.profile(pseudonym),
            draft=keys.draft(pseudonym),
            receipts=keys.receipts(pseudonym, channel),
            lease=keys.lease(pseudonym),
            rate=keys.rate(pseudonym),
            repeats=keys.rate_repeats(pseudonym),
            unseen=keys.unseen(pseudonym),
        )

    def everything(self) -> list[str]:
        """Every per-phone key but the lease and the rate counter, on every channel (the
        last body's digest goes too: it was the migrant's words)."""
        per_channel = [
            key
            for channel in Channel
            for key in (keys.session(self.pseudonym, channel),
                        keys.receipts(self.pseudonym, channel))
        ]
        return [*per_channel, self.profile, self.draft, self.unseen, self.repeats]


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

    def digest(self) -> str:
        """What STEP compares: SHA-1 of the five values ('' where absent) joined by NUL."""
        joined = "\0".join(value or "" for value in
                           (self.session, self.profile, self.draft, self.receipts, self.unseen))
        return hashlib.sha1(joined.encode()).hexdigest()  # noqa: S324 (a checksum, not security)

    def after(self, commit: Commit) -> PhoneState:
        """The state once `commit` is written."""

        def written(before: str | None, value: str) -> str | None:
            return before if value == KEEP else None if value == DELETE else value

        return PhoneState(
            session=written(self.session, commit.session_json),
            profile=written(self.profile, commit.profile_json),
            draft=written(self.draft, commit.draft_json),
            receipts=written(self.receipts, commit.receipts_json),
            unseen=written(self.unseen, commit.unseen),
        )


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
        [phone_keys.session, phone_keys.profile, phone_keys.draft, phone_keys.receipts,
         phone_keys.lease, phone_keys.rate, keys.abandoned_lease(phone_keys.pseudonym, token),
         phone_keys.repeats, phone_keys.unseen],
        [token, LEASE_MS, digest, rate.limit, RATE_WINDOW_SECONDS, rate.repeat_limit,
         rate.body_digest],
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


def begin_result(raw: list[Any]) -> Loaded:
    outcome = Begun(int(raw[0]))
    if outcome is Begun.ANSWERED:
        return Loaded(outcome, receipts=_text(raw[1]))
    if outcome is Begun.RATE_LIMITED:
        return Loaded(outcome, newly_limited=int(raw[1]) == 1)
    if outcome in (Begun.BUSY, Begun.WRITTEN):
        return Loaded(outcome)
    session, profile, draft, receipts, unseen = (_text(value) for value in raw[1:6])
    return Loaded(outcome, session=session, profile=profile, draft=draft, receipts=receipts,
                  unseen=unseen)


@dataclass(frozen=True)
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


def _commit_call(phone_keys: PhoneKeys, token: str, commit: Commit) -> tuple[list[str],
                                                                             list[str | int]]:
    return (
        [phone_keys.session, phone_keys.profile, phone_keys.draft, phone_keys.receipts,
         phone_keys.lease, phone_keys.unseen],
        [
            token,
            commit.session_json, max(commit.session_ttl, 1),
            commit.profile_json, max(commit.profile_ttl, NO_EXPIRY),
            commit.draft_json, max(commit.draft_ttl, 1),
            commit.receipts_json, max(commit.receipts_ttl, 1),
            DELETE if commit.unseen == DELETE else KEEP,
        ],
    )


def queue_commit(pipe: Any, phone_keys: PhoneKeys, token: str, commit: Commit) -> None:
    COMMIT.queue(pipe, *_commit_call(phone_keys, token, commit))


async def commit(redis: Any, phone_keys: PhoneKeys, token: str, values: Commit) -> Any:
    """COMMIT on its own, when the turn has no effect on cases to send with it."""
    return await COMMIT.run(redis, *_commit_call(phone_keys, token, values))


async def commit_by_body(redis: Any, phone_keys: PhoneKeys, token: str, commit: Commit) -> Any:
    """The commit alone, sending the script's body (after a NOSCRIPT answer)."""
    script_keys, args = _commit_call(phone_keys, token, commit)
    return await redis.eval(COMMIT.source, len(script_keys), *script_keys, *args)


async def step(redis: Any, phone_keys: PhoneKeys, token: str, *, expected: str,
               digest: str, rate: RateLimit, values: Commit) -> Loaded:
    """STEP: write `values` in one round trip if the state is still the `expected` one."""
    begin_keys, begin_args = _begin_call(phone_keys, token, digest, rate)
    _, commit_args = _commit_call(phone_keys, token, values)
    raw = await STEP.run(redis, begin_keys, [*begin_args, expected, *commit_args[1:]])
    return begin_result(raw)


def queue_erase_phone(pipe: Any, phone_keys: PhoneKeys, token: str) -> None:
    """Queue the deletion of every per-phone key (the migrant's erasure), lease kept."""
    ERASE_PHONE.queue_body(pipe, [phone_keys.lease, *phone_keys.everything()], [token])


async def save_receipts(redis: Any, phone_keys: PhoneKeys, receipts_json: str, ttl: int) -> None:
    """Correct the receipts after the fact (an answer changed once effects were applied)."""
    await redis.set(phone_keys.receipts, receipts_json, ex=max(ttl, 1))


async def release(redis: Any, phone_keys: PhoneKeys, token: str) -> None:
    await RELEASE.run(redis, [phone_keys.lease, keys.abandoned_lease(phone_keys.pseudonym, token)],
                      [token, LEASE_MS])


async def mark_unseen(redis: Any, phone_keys: PhoneKeys, entries: list[str], ttl: int) -> None:
    """Remember what a phone was never told (cases made while it got the fallback).

    APPEND, not SET: two hops may each leave one; each entry is resolved, shown and
    cleared at the phone's next contact (BEGIN and STEP read the key with the session).
    """
    async with redis.pipeline(transaction=False) as pipe:
        for entry in entries:
            pipe.append(phone_keys.unseen, f" {entry}")
        pipe.expire(phone_keys.unseen, max(ttl, 1))
        await pipe.execute()


def commit_saved(raw: Any) -> bool:
    return int(raw) == 1
