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
from redis.exceptions import WatchError

from bot.errors import LastAdmin, OperatorExists, OperatorNotFound
from bot.store import keys
from bot.store.cases import iso, text_of
from bot.store.replies import reply

TOKEN_BYTES = 32


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


async def add_operator(redis: Redis, *, name: str, role: Role, now: datetime) -> str:
    """Create (or re-create after revocation) an operator; return its token, shown once."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    operator = Operator(name=name, role=role, created_at=iso(now), token_hash=hash_token(token))
    transaction: Any = redis.pipeline(transaction=True)
    async with transaction as pipe:
        while True:
            try:
                await pipe.watch(keys.operators())
                existing = await pipe.hget(keys.operators(), name)
                if existing and Operator.from_json(text_of(existing)).active:
                    raise OperatorExists(name)
                pipe.multi()
                pipe.hset(keys.operators(), name, operator.to_json())
                pipe.set(keys.operator_token(operator.token_hash), name)
                await pipe.execute()
                return token
            except WatchError:
                continue


async def list_operators(redis: Redis) -> list[Operator]:
    records = await reply(redis.hgetall(keys.operators()))
    found = [Operator.from_json(text_of(raw)) for raw in records.values()]
    return sorted(found, key=lambda operator: operator.name)


async def is_active(redis: Redis, name: str) -> bool:
    """Whether an active operator has this name."""
    raw = await reply(redis.hget(keys.operators(), name))
    return raw is not None and Operator.from_json(text_of(raw)).active


async def revoke_operator(redis: Redis, *, name: str, now: datetime) -> Operator:
    transaction: Any = redis.pipeline(transaction=True)
    async with transaction as pipe:
        while True:
            try:
                await pipe.watch(keys.operators())
                existing = await pipe.hget(keys.operators(), name)
                if not existing or not Operator.from_json(text_of(existing)).active:
                    raise OperatorNotFound(name)
                revoked = Operator.from_json(text_of(existing))
                if revoked.role is Role.ADMIN and await _active_admins(pipe) <= 1:
                    raise LastAdmin(name)
                revoked = Operator(**{**asdict(revoked), "revoked_at": iso(now)})
                pipe.multi()
                pipe.hset(keys.operators(), name, revoked.to_json())
                pipe.delete(keys.operator_token(revoked.token_hash))
                await pipe.execute()
                return revoked
            except WatchError:
                continue


async def _active_admins(pipe: Any) -> int:
    """Active admins, read under the caller's WATCH of the operators hash."""
    records = await pipe.hvals(keys.operators())
    found = (Operator.from_json(text_of(raw)) for raw in records)
    return sum(1 for operator in found if operator.active and operator.role is Role.ADMIN)


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
