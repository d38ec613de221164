"""Operators of the admin API: names, roles and hashed bearer tokens.

Tokens carry 256 bits from `secrets`, so a plain SHA-256 is a sufficient hash
(no password stretching needed); only the hash is stored, and a token is
found by its hash, never by comparing secrets one by one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis

from bot.errors import LastAdmin, OperatorExists, OperatorNotFound
from bot.store import keys
from bot.store.cases import iso, text_of
from bot.store.replies import reply
from bot.store.scripts import Script

TOKEN_BYTES = 32
LAST_ADMIN = -1


class Role(StrEnum):
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"

    def includes(self, needed: Role) -> bool:
        """Roles are ordered: operator < supervisor < admin."""
        order = list(Role)
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True)
class Operator:
    name: str
    role: Role
    created_at: str
    token_hash: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> Operator:
        data: dict[str, Any] = json.loads(raw)
        data["role"] = Role(data["role"])
        return cls(**data)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


ADD_OPERATOR = Script(
    "add_operator",
    """
-- KEYS[1] operators hash   KEYS[2] the new token's name key (both under {ops})
-- ARGV[1] name   ARGV[2] operator record (JSON)
-- Returns 1 when added, 0 when an active operator has that name.
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing and cjson.decode(existing)['revoked_at'] == cjson.null then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[1])
return 1
""",
)

REVOKE_OPERATOR = Script(
    "revoke_operator",
    """
-- KEYS[1] operators hash   KEYS[2] the operator's token key
-- ARGV[1] name   ARGV[2] the record as read (JSON)   ARGV[3] the revoked record (JSON)
-- Returns 1 when revoked, 0 when the record changed since it was read, -1 when it is
-- the last active admin (who must stay: the API cannot be administered without one).
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
local target = cjson.decode(ARGV[2])
if target['role'] == 'admin' then
  local admins = 0
  for _, raw in ipairs(redis.call('HVALS', KEYS[1])) do
    local operator = cjson.decode(raw)
    if operator['role'] == 'admin' and operator['revoked_at'] == cjson.null then
      admins = admins + 1
    end
  end
  if admins <= 1 then return -1 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('DEL', KEYS[2])
return 1
""",
)


async def add_operator(redis: Redis, *, name: str, role: Role, now: datetime) -> str:
    """Create (or re-create after revocation) an operator; return its token, shown once."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    operator = Operator(name=name, role=role, created_at=iso(now), token_hash=hash_token(token))
    added = await ADD_OPERATOR.run(
        redis,
        [keys.operators(), keys.operator_token(operator.token_hash)],
        [name, operator.to_json()],
    )
    if int(added) != 1:
        raise OperatorExists(name)
    return token


async def list_operators(redis: Redis) -> list[Operator]:
    records = await reply(redis.hgetall(keys.operators()))
    found = [Operator.from_json(text_of(raw)) for raw in records.values()]
    return sorted(found, key=lambda operator: operator.name)


async def is_active(redis: Redis, name: str) -> bool:
    """Whether an active operator has this name."""
    raw = await reply(redis.hget(keys.operators(), name))
    return raw is not None and Operator.from_json(text_of(raw)).active


async def revoke_operator(redis: Redis, *, name: str, now: datetime) -> Operator:
    while True:
        existing = await reply(redis.hget(keys.operators(), name))
        if not existing or not Operator.from_json(text_of(existing)).active:
            raise OperatorNotFound(name)
        revoked = Operator.from_json(text_of(existing))
        revoked = Operator(**{**asdict(revoked), "revoked_at": iso(now)})
        done = int(await REVOKE_OPERATOR.run(
            redis,
            [keys.operators(), keys.operator_token(revoked.token_hash)],
            [name, text_of(existing), revoked.to_json()],
        ))
        if done == LAST_ADMIN:
            raise LastAdmin(name)
        if done == 1:
            return revoked


async def operator_for_token(redis: Redis, token: str) -> Operator | None:
    """The active operator holding `token`, or None."""
    token_hash = hash_token(token)
    name = await redis.get(keys.operator_token(token_hash))
    if name is None:
        return None
    raw = await reply(redis.hget(keys.operators(), text_of(name)))
    if raw is None:
        return None
    operator = Operator.from_json(text_of(raw))
    if not operator.active or not hmac.compare_digest(operator.token_hash, token_hash):
        return None
    return operator
