"""A phone's conversation state in Redis: one atomic read and one atomic write a message.

`BEGIN` takes the phone's lease and reads session, profile and draft in one
script; `COMMIT` writes them back only while the lease is still held (a
writer whose lease expired cannot overwrite a newer step) and releases it.
Together they make each read-modify-write atomic in two round trips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.store import keys
from bot.store.case_scripts import LuaScript

LEASE_MS = 5000
DELETE = "-"
KEEP = ""

BEGIN = LuaScript(
    "begin_step",
    """
-- KEYS[1] session  KEYS[2] profile  KEYS[3] draft  KEYS[4] lease
-- ARGV[1] lease token  ARGV[2] lease duration (ms)
-- Returns {1, session, profile, draft} (false where absent) once the lease is
-- taken, or {0} while another writer holds it.
if not redis.call('SET', KEYS[4], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {0}
end
return {1, redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3])}
""",
)

COMMIT = LuaScript(
    "commit_step",
    """
-- KEYS[1] session  KEYS[2] profile  KEYS[3] draft  KEYS[4] lease
-- ARGV[1] lease token
-- ARGV[2] session JSON ('' deletes it)    ARGV[3] session TTL (s)
-- ARGV[4] profile JSON ('' keeps it)      ARGV[5] profile TTL (s)
-- ARGV[6] draft JSON ('' keeps it, '-' deletes it)  ARGV[7] draft TTL (s)
-- Returns 1 when saved, 0 when the lease was lost (nothing written).
if redis.call('GET', KEYS[4]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[5])
end
if ARGV[6] == '-' then
  redis.call('DEL', KEYS[3])
elseif ARGV[6] ~= '' then
  redis.call('SET', KEYS[3], ARGV[6], 'EX', ARGV[7])
end
redis.call('DEL', KEYS[4])
return 1
""",
)

RELEASE = LuaScript(
    "release_lease",
    """
-- KEYS[1] lease  ARGV[1] lease token
-- Releases the lease if still ours (after a step that failed half-way).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
""",
)


@dataclass(frozen=True)
class PhoneKeys:
    session: str
    profile: str
    draft: str
    lease: str

    @classmethod
    def of(cls, pseudonym: str, channel: str) -> PhoneKeys:
        return cls(
            session=keys.session(pseudonym, channel),
            profile=keys.profile(pseudonym),
            draft=keys.draft(pseudonym),
            lease=keys.lease(pseudonym),
        )

    def all(self) -> list[str]:
        return [self.session, self.profile, self.draft, self.lease]


@dataclass(frozen=True)
class Loaded:
    acquired: bool
    session: str | None = None
    profile: str | None = None
    draft: str | None = None


def queue_begin(pipe: Any, phone_keys: PhoneKeys, token: str) -> None:
    BEGIN.queue(pipe, phone_keys.all(), [token, LEASE_MS])


def begin_result(raw: list[Any]) -> Loaded:
    if not raw or int(raw[0]) == 0:
        return Loaded(acquired=False)
    session, profile, draft = (None if value is None else str(value) for value in raw[1:4])
    return Loaded(acquired=True, session=session, profile=profile, draft=draft)


@dataclass(frozen=True)
class Commit:
    session_json: str
    session_ttl: int
    profile_json: str = KEEP
    profile_ttl: int = 0
    draft_json: str = KEEP
    draft_ttl: int = 0


def queue_commit(pipe: Any, phone_keys: PhoneKeys, token: str, commit: Commit) -> None:
    COMMIT.queue(
        pipe,
        phone_keys.all(),
        [
            token,
            commit.session_json, commit.session_ttl,
            commit.profile_json, max(commit.profile_ttl, 1),
            commit.draft_json, max(commit.draft_ttl, 1),
        ],
    )


async def release(redis: Any, phone_keys: PhoneKeys, token: str) -> None:
    await RELEASE.run(redis, [phone_keys.lease], [token])


def commit_saved(raw: Any) -> bool:
    return int(raw) == 1
