"""Audit trail: one append-only Redis stream per case shard.

Every event carries its case's reference; the case's trail (`keys.case_trail`)
lists the ids of its own events, so a case's trail is read by id (no scan of
the stream).
Events about no single case (an export) go to shard 0's stream. Only XADD is
ever sent to these streams; no code path edits or trims them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from bot.cases.model import AuditEvent
from bot.errors import CaseNotFound
from bot.store import keys
from bot.store.cases import iso, text_of
from bot.store.scripts import Script

APPEND_AUDIT = Script.load("append_audit")
CASE_EVENTS = Script.load("case_events")

# References of events about no single case (an export, for instance).
NO_CASE = ""
NO_CASE_SHARD = 0


def audit_call(
    *,
    reference: str,
    actor: str,
    action: str,
    at: datetime,
    detail: Mapping[str, object] | None = None,
) -> tuple[list[str], list[str | int]]:
    """KEYS and ARGV of APPEND_AUDIT for one event."""
    shard = keys.shard_of(reference) if reference != NO_CASE else NO_CASE_SHARD
    stream = keys.shard_audit(shard)
    record = keys.case(reference) if reference != NO_CASE else stream
    trail = keys.case_trail(reference) if reference != NO_CASE else stream
    return (
        [stream, record, trail],
        [reference, actor, action, iso(at), json.dumps(dict(detail or {}), sort_keys=True)],
    )


def queue_audit(
    pipe: Any,
    *,
    reference: str,
    actor: str,
    action: str,
    at: datetime,
    detail: Mapping[str, object] | None = None,
) -> None:
    """Queue one audit event (on a pipeline or a Batch of the event's shard)."""
    APPEND_AUDIT.queue(pipe, *audit_call(reference=reference, actor=actor, action=action,
                                         at=at, detail=detail))


async def record(
    redis: Redis,
    *,
    reference: str,
    actor: str,
    action: str,
    at: datetime,
    detail: Mapping[str, object] | None = None,
) -> None:
    await APPEND_AUDIT.run(redis, *audit_call(reference=reference, actor=actor, action=action,
                                              at=at, detail=detail))


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


def _fields(raw: Any) -> dict[str, str]:
    if isinstance(raw, Mapping):
        return {text_of(k): text_of(v) for k, v in raw.items()}
    flat = [text_of(part) for part in raw or []]
    return dict(zip(flat[::2], flat[1::2], strict=True))


async def case_events(redis: Redis, reference: str) -> list[AuditEvent]:
    """The audit trail of one case, oldest first; CaseNotFound when there is no such case."""
    found = await CASE_EVENTS.run(
        redis,
        [keys.case(reference), keys.shard_audit(keys.shard_of(reference)),
         keys.case_trail(reference)],
        [],
    )
    if found is None or found is False:
        raise CaseNotFound(reference)
    return [event_from_entry(entry[0], _fields(entry[1]), reference) for entry in found]


async def shard_events(redis: Redis, shard: int, *, after: str = "0-0",
                       count: int = 1000) -> list[AuditEvent]:
    """Events of one shard's stream after the id `after`, oldest first."""
    entries = await redis.xrange(keys.shard_audit(shard), min=f"({after}", max="+", count=count)
    return [event_from_entry(entry_id, fields or {}, "") for entry_id, fields in entries or []]
