"""Audit trail: an append-only Redis stream per case, and one for all cases.

Only XADD is ever sent to these streams; no code path edits or trims them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from bot.cases.model import AuditEvent
from bot.store import keys
from bot.store.cases import iso, text_of

# References of events about no single case (an export, for instance).
NO_CASE = ""


def queue_audit(
    pipe: Any,
    *,
    reference: str,
    actor: str,
    action: str,
    at: datetime,
    detail: Mapping[str, object] | None = None,
) -> None:
    """Queue one audit event on the case's stream and on the global stream."""
    fields = {
        "actor": actor,
        "action": action,
        "at": iso(at),
        "detail": json.dumps(dict(detail or {}), sort_keys=True),
    }
    if reference != NO_CASE:
        pipe.xadd(keys.case_audit(reference), fields)
    pipe.xadd(keys.cases_audit(), {"reference": reference, **fields})


async def record(
    redis: Redis,
    *,
    reference: str,
    actor: str,
    action: str,
    at: datetime,
    detail: Mapping[str, object] | None = None,
) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        queue_audit(pipe, reference=reference, actor=actor, action=action, at=at, detail=detail)
        await pipe.execute()


def event_from_entry(entry_id: Any, fields: Mapping[Any, Any], reference: str) -> AuditEvent:
    values = {text_of(k): text_of(v) for k, v in fields.items()}
    return AuditEvent(
        id=text_of(entry_id),
        reference=values.get("reference", reference),
        actor=values["actor"],
        action=values["action"],
        at=datetime.fromisoformat(values["at"]),
        detail=json.loads(values.get("detail") or "{}"),
    )


async def case_events(redis: Redis, reference: str) -> list[AuditEvent]:
    """The audit trail of one case, oldest first."""
    entries = await redis.xrange(keys.case_audit(reference))
    return [
        event_from_entry(entry_id, fields or {}, reference) for entry_id, fields in entries or []
    ]
