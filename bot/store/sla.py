"""Urgent cases nobody has taken yet: what the SLA check re-notifies about.

A case is *acknowledged* once an operator moved its status past `new` or set
an assignee. The unacknowledged urgent cases are the intersection of two
existing indexes (priority `urgent`, status `new`) of each case shard, read
without a SCAN.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from redis.asyncio import Redis

from bot.cases.model import CaseKind, CaseStatus, Priority
from bot.store import keys
from bot.store.cases import text_of
from bot.store.replies import reply


@dataclass(frozen=True)
class Unacknowledged:
    reference: str
    kind: CaseKind
    created_at: datetime


def acknowledged(status: str, assignee: str) -> bool:
    """An operator has the case in hand: it moved past `new`, or someone is assigned."""
    return status != CaseStatus.NEW or bool(assignee)


async def unacknowledged_urgent(redis: Redis) -> list[Unacknowledged]:
    """Urgent cases still `new` and unassigned, the oldest first."""
    async with redis.pipeline(transaction=False) as pipe:
        for shard in keys.SHARDS:
            pipe.zinter([keys.cases_by_status(shard, CaseStatus.NEW),
                         keys.cases_by_priority(shard, Priority.URGENT)])
        found = await pipe.execute()
    references = [text_of(ref) for members in found for ref in members]
    if not references:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for reference in references:
            pipe.hmget(keys.case(reference), ["status", "assignee", "kind", "created_at"])
        rows = await pipe.execute()
    found = []
    for reference, row in zip(references, rows, strict=True):
        status, assignee, kind, created_at = (text_of(v) if v is not None else "" for v in row)
        if not created_at or acknowledged(status, assignee):
            continue
        found.append(Unacknowledged(reference, CaseKind(kind),
                                    datetime.fromisoformat(created_at)))
    return sorted(found, key=lambda case: case.created_at)


async def still_unacknowledged(redis: Redis, reference: str) -> bool:
    status, assignee = await reply(redis.hmget(keys.case(reference), ["status", "assignee"]))
    if status is None:
        return False
    return not acknowledged(text_of(status), text_of(assignee or ""))
