"""Reads behind the SLA check: cases of one status and one priority, without a SCAN.

Which cases are late (urgent, not yet acknowledged) is the case service's rule
(`bot.cases.service.unacknowledged_urgent`); here the candidates are the
intersection of two existing indexes (a status, a priority) of each case shard.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from redis.asyncio import Redis

from bot.cases.model import CaseKind, CaseStatus, Priority
from bot.store import keys
from bot.store.cases import text_of


@dataclass(frozen=True)
class Unacknowledged:
    reference: str
    kind: CaseKind
    created_at: datetime


@dataclass(frozen=True)
class Candidate:
    case: Unacknowledged
    status: str
    assignee: str


async def cases_with(redis: Redis, *, status: CaseStatus, priority: Priority) -> list[Candidate]:
    """Every case indexed under both `status` and `priority`, with its status and assignee
    as they are now."""
    async with redis.pipeline(transaction=False) as pipe:
        for shard in keys.SHARDS:
            pipe.zinter([keys.cases_by_status(shard, status),
                         keys.cases_by_priority(shard, priority)])
        found = await pipe.execute()
    references = [text_of(ref) for members in found for ref in members]
    if not references:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for reference in references:
            pipe.hmget(keys.case(reference), ["status", "assignee", "kind", "created_at"])
        rows = await pipe.execute()
    candidates = []
    for reference, row in zip(references, rows, strict=True):
        now_status, assignee, kind, created_at = (text_of(v) if v is not None else ""
                                                  for v in row)
        if not created_at:
            continue
        candidates.append(Candidate(
            Unacknowledged(reference, CaseKind(kind), datetime.fromisoformat(created_at)),
            now_status, assignee))
    return candidates


async def status_and_assignee(redis: Redis, reference: str) -> tuple[str, str] | None:
    """The case's status and assignee ('' for none), or None when there is no such case."""
    status, assignee = await redis.hmget(keys.case(reference), ["status", "assignee"])
    if status is None:
        return None
    return text_of(status), text_of(assignee or "")
