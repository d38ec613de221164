"""Operators' records and token keys (the rules are in `bot.admin.operators`).

Records are JSON under the `{ops}` hash tag: the operators hash (name -> record)
and one key a token hash naming its holder.
"""

from __future__ import annotations

from enum import IntEnum

from redis.asyncio import Redis

from bot.store import keys
from bot.store.cases import text_of
from bot.store.scripts import Script


class Revoked(IntEnum):
    CHANGED = 0
    """The record changed since it was read: read it again."""
    DONE = 1
    LAST_OF_ROLE = -1
    """It is the last active holder of the role that must remain."""


ADD_OPERATOR = Script.load("add_operator")

REVOKE_OPERATOR = Script.load("revoke_operator")


async def add(redis: Redis, *, name: str, token_hash: str, record: str) -> bool:
    """Store `record` under `name` unless an active operator has that name."""
    added = await ADD_OPERATOR.run(
        redis, [keys.operators(), keys.operator_token(token_hash)], [name, record])
    return int(added) == 1


async def all_records(redis: Redis) -> list[str]:
    records = await redis.hgetall(keys.operators())
    return [text_of(raw) for raw in records.values()]


async def record(redis: Redis, name: str) -> str | None:
    raw = await redis.hget(keys.operators(), name)
    return None if raw is None else text_of(raw)


async def revoke(redis: Redis, *, name: str, token_hash: str, read: str, revoked: str,
                 must_remain: str) -> Revoked:
    """Replace the record `read` by `revoked` and drop the token's key, atomically."""
    done = await REVOKE_OPERATOR.run(
        redis, [keys.operators(), keys.operator_token(token_hash)],
        [name, read, revoked, must_remain])
    return Revoked(int(done))


async def record_for_token(redis: Redis, token_hash: str) -> str | None:
    """The record of the operator a token hash names (active or not), or None."""
    name = await redis.get(keys.operator_token(token_hash))
    return None if name is None else await record(redis, text_of(name))
