"""Operators and their rules: roles and what they include, tokens, and the admin that
must remain.

Tokens carry 256 bits from `secrets`, so a plain SHA-256 is a sufficient hash
(no password stretching needed); only the hash is stored, and a token is found
by its hash, never by comparing secrets one by one. Records and tokens are kept
by `bot.store.operators`, which knows none of these rules: the role that must
keep an active holder is passed to its script.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis

from bot.errors import LastAdmin, OperatorExists, OperatorNotFound
from bot.store import operators as records
from bot.store.cases import iso

TOKEN_BYTES = 32


class Role(StrEnum):
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"

    def includes(self, needed: Role) -> bool:
        """Roles are ordered: operator < supervisor < admin."""
        order = list(Role)
        return order.index(self) >= order.index(needed)


MUST_REMAIN = Role.ADMIN
"""The role that always keeps an active holder: the API cannot be administered without one."""


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
    if not await records.add(redis, name=name, token_hash=operator.token_hash,
                             record=operator.to_json()):
        raise OperatorExists(name)
    return token


async def list_operators(redis: Redis) -> list[Operator]:
    found = [Operator.from_json(raw) for raw in await records.all_records(redis)]
    return sorted(found, key=lambda operator: operator.name)


async def is_active(redis: Redis, name: str) -> bool:
    """Whether an active operator has this name."""
    raw = await records.record(redis, name)
    return raw is not None and Operator.from_json(raw).active


async def revoke_operator(redis: Redis, *, name: str, now: datetime) -> Operator:
    """Revoke `name`'s token; never the last active holder of `MUST_REMAIN`."""
    while True:
        existing = await records.record(redis, name)
        if existing is None or not Operator.from_json(existing).active:
            raise OperatorNotFound(name)
        revoked = replace(Operator.from_json(existing), revoked_at=iso(now))
        done = await records.revoke(redis, name=name, token_hash=revoked.token_hash,
                                    read=existing, revoked=revoked.to_json(),
                                    must_remain=MUST_REMAIN)
        if done is records.Revoked.LAST_OF_ROLE:
            raise LastAdmin(name)
        if done is records.Revoked.DONE:
            return revoked


async def operator_for_token(redis: Redis, token: str) -> Operator | None:
    """The active operator holding `token`, or None."""
    token_hash = hash_token(token)
    raw = await records.record_for_token(redis, token_hash)
    if raw is None:
        return None
    operator = Operator.from_json(raw)
    if not operator.active or not hmac.compare_digest(operator.token_hash, token_hash):
        return None
    return operator
