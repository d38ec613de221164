"""Referrals of a case (docs/spec.md §12), stored beside it in its shard: scripts and thin callers.

A case's referrals are one hash (id → JSON record, no personal field); the
operators' notes on them another (id → text), which an erasure deletes with the
case's other personal data. Creating a referral also adds an event to the shard's
outbox (as creating a case does), so the worker's job is queued even if the web
process dies right after. The rules are `bot.cases.referrals`'.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from bot.store import keys
from bot.store.cases import iso, text_of
from bot.store.scripts import Script

CREATE_REFERRAL = Script.load("referral_create")
UPDATE_REFERRAL = Script.load("referral_update")

@dataclass(frozen=True)
class Created:
    pass


@dataclass(frozen=True)
class Missing:
    pass


@dataclass(frozen=True)
class Erased:
    pass


@dataclass(frozen=True)
class StillOpen:
    referral_id: str
    status: str


CreateOutcome = Created | Missing | Erased | StillOpen


async def create(redis: Redis, *, reference: str, referral_id: str, record: Mapping[str, Any],
                 note: str, actor: str, action: str, at: datetime,
                 detail: Mapping[str, object], open_statuses: Sequence[str]) -> CreateOutcome:
    shard = keys.shard_of(reference)
    raw = await CREATE_REFERRAL.run(
        redis,
        [keys.case(reference), keys.case_referrals(reference), keys.referral_notes(reference),
         keys.shard_audit(shard), keys.case_trail(reference), keys.cases_outbox(shard)],
        [referral_id, json.dumps(record, sort_keys=True), note, iso(at), actor, action,
         json.dumps(detail, sort_keys=True), json.dumps(list(open_statuses))],
    )
    outcome = [text_of(part) for part in raw]
    if outcome[0] == "created":
        return Created()
    if outcome[0] == "missing":
        return Missing()
    if outcome[0] == "erased":
        return Erased()
    return StillOpen(referral_id=outcome[1], status=outcome[2])


@dataclass(frozen=True)
class Found:
    records: dict[str, str]
    """Referral id → its JSON record."""
    notes: dict[str, str]


async def read_all(redis: Redis, reference: str) -> Found:
    """Every referral of a case and the notes on them (one slot, one round trip)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.case_referrals(reference))
        pipe.hgetall(keys.referral_notes(reference))
        records, notes = await pipe.execute()
    return Found(
        records={text_of(k): text_of(v) for k, v in records.items()},
        notes={text_of(k): text_of(v) for k, v in notes.items()},
    )


async def read_one(redis: Redis, reference: str, referral_id: str) -> str | None:
    raw = await redis.hget(keys.case_referrals(reference), referral_id)
    return None if raw is None else text_of(raw)


async def update(redis: Redis, *, reference: str, referral_id: str, changes: Mapping[str, Any],
                 from_statuses: Sequence[str], actor: str, action: str, at: datetime,
                 detail: Mapping[str, object]) -> str | None:
    """Apply `changes` to a referral still in one of `from_statuses`, audited as `action`;
    its JSON after, or None when it is absent or in another status (nothing written)."""
    raw = await UPDATE_REFERRAL.run(
        redis,
        [keys.case_referrals(reference), keys.shard_audit(keys.shard_of(reference)),
         keys.case(reference), keys.case_trail(reference)],
        [referral_id, json.dumps(dict(changes)), json.dumps(list(from_statuses)), actor,
         action, iso(at), json.dumps(detail, sort_keys=True), reference],
    )
    if raw is None or isinstance(raw, list):
        return None
    return text_of(raw)
