"""Operator writes on a case: status, priority, assignee, escalation, journal.

Each write is an optimistic transaction (WATCH the record, read it, decide in
Python with the lifecycle machine, MULTI/EXEC the record, its indexes and its
audit events together); a concurrent write to the record retries it.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import WatchError

from bot.cases import lifecycle
from bot.cases.model import (
    MAX_ESCALATION_LEVEL,
    Case,
    CaseStatus,
    JournalEntry,
    JournalKind,
    Priority,
)
from bot.errors import CaseNotFound, EscalationRefused, MessageRefused
from bot.store import keys
from bot.store.audit import queue_audit
from bot.store.cases import case_from_record, iso, text_of
from bot.store.replies import reply

# Triage score: priority rank first, then creation order (the case's `seq`).
RANK_SPAN = 10**12
NO = "no"

T = TypeVar("T")


def triage_score(priority: Priority, seq: int) -> int:
    return priority.rank * RANK_SPAN + seq


def index_keys(case: Case) -> set[str]:
    """Every index a case in this state belongs to."""
    found = {
        keys.cases_triage(),
        keys.cases_by_status(case.status),
        keys.cases_by_kind(case.kind),
        keys.cases_by_priority(case.priority),
    }
    if case.assignee:
        found.add(keys.cases_by_assignee(case.assignee))
    if case.escalated:
        found.add(keys.cases_escalated())
    return found


@dataclass(frozen=True)
class Loaded:
    case: Case
    seq: int
    phone_pseudonym: str
    answers_sms_safe: str


Plan = Callable[[Loaded, Any], T]


async def _transact(redis: Redis, reference: str, plan: Plan[T]) -> T:
    """Run `plan(loaded, pipe)` under WATCH; it queues its writes after `pipe.multi()`."""
    key = keys.case(reference)
    transaction: Any = redis.pipeline(transaction=True)
    async with transaction as pipe:
        while True:
            try:
                await pipe.watch(key)
                raw = await pipe.hgetall(key)
                if not raw:
                    raise CaseNotFound(reference)
                record = {text_of(k): text_of(v) for k, v in raw.items()}
                loaded = Loaded(
                    case=case_from_record(record),
                    seq=int(record["seq"]),
                    phone_pseudonym=record.get("phone_pseudonym", ""),
                    answers_sms_safe=json.loads(record.get("answers") or "{}").get("sms_safe", ""),
                )
                pipe.multi()
                result = plan(loaded, pipe)
                await pipe.execute()
                return result
            except WatchError:
                continue


def _queue_reindex(pipe: Any, before: Loaded, after: Case) -> None:
    old, new = index_keys(before.case), index_keys(after)
    for stale in old - new:
        pipe.zrem(stale, after.reference)
    score = triage_score(after.priority, before.seq)
    for index in new:
        pipe.zadd(index, {after.reference: score})


def _queue_record(pipe: Any, case: Case) -> None:
    pipe.hset(
        keys.case(case.reference),
        mapping={
            "status": str(case.status),
            "priority": str(case.priority),
            "assignee": case.assignee or "",
            "escalated": "1" if case.escalated else "0",
            "escalation_level": str(case.escalation_level),
            "updated_at": iso(case.updated_at),
        },
    )


UNCHANGED: Any = object()


async def update_case(
    redis: Redis,
    *,
    reference: str,
    actor: str,
    now: datetime,
    status: CaseStatus | None = None,
    priority: Priority | None = None,
    assignee: str | None = UNCHANGED,
) -> Case:
    """Change status (through the lifecycle), priority and/or assignee; audit each change.

    Raises IllegalTransition (with the allowed statuses) and CaseNotFound.
    """

    def plan(loaded: Loaded, pipe: Any) -> Case:
        before = loaded.case
        after = before
        events: list[tuple[str, dict[str, object]]] = []
        if status is not None and status != before.status:
            after = after.model_copy(
                update=dict(status=lifecycle.next_status(before.status, status))
            )
            events.append(("status_changed", {"from": before.status, "to": status}))
        elif status is not None:
            # Asking for the current status is not a change the lifecycle knows.
            lifecycle.next_status(before.status, status)
        if priority is not None and priority != before.priority:
            after = after.model_copy(update=dict(priority=priority))
            events.append(("priority_changed", {"from": before.priority, "to": priority}))
        if assignee is not UNCHANGED and (assignee or None) != before.assignee:
            after = after.model_copy(update=dict(assignee=assignee or None))
            events.append(("assigned", {"from": before.assignee, "to": assignee or None}))
        if not events:
            return before
        after = after.model_copy(update=dict(updated_at=now))
        _queue_record(pipe, after)
        _queue_reindex(pipe, loaded, after)
        for action, detail in events:
            queue_audit(
                pipe, reference=reference, actor=actor, action=action, at=now, detail=detail
            )
        return after

    return await _transact(redis, reference, plan)


def _queue_journal(pipe: Any, reference: str, entry: JournalEntry) -> None:
    pipe.rpush(keys.case_notes(reference), entry.model_dump_json())


def new_entry(kind: JournalKind, *, author: str, at: datetime, text: str) -> JournalEntry:
    return JournalEntry(id=secrets.token_hex(6), kind=kind, author=author, at=at, text=text)


async def add_note(
    redis: Redis, *, reference: str, actor: str, now: datetime, text: str
) -> JournalEntry:
    entry = new_entry(JournalKind.NOTE, author=actor, at=now, text=text)

    def plan(loaded: Loaded, pipe: Any) -> JournalEntry:
        _queue_journal(pipe, reference, entry)
        pipe.hset(keys.case(reference), "updated_at", iso(now))
        queue_audit(
            pipe,
            reference=reference,
            actor=actor,
            action="note_added",
            at=now,
            detail={"entry": entry.id},
        )
        return entry

    return await _transact(redis, reference, plan)


async def escalate(
    redis: Redis, *, reference: str, actor: str, now: datetime, reason: str, level: int
) -> Case:
    """Raise the escalation level (1 or 2, above the present one); the reason is journalled."""
    if not 1 <= level <= MAX_ESCALATION_LEVEL:
        raise ValueError("escalation level is 1 or 2")
    entry = new_entry(JournalKind.ESCALATION, author=actor, at=now, text=reason)

    def plan(loaded: Loaded, pipe: Any) -> Case:
        before = loaded.case
        if level <= before.escalation_level:
            raise EscalationRefused(
                f"already at level {before.escalation_level}: escalate only to a higher level"
            )
        after = before.model_copy(
            update=dict(escalated=True, escalation_level=level, updated_at=now)
        )
        _queue_record(pipe, after)
        _queue_reindex(pipe, loaded, after)
        _queue_journal(pipe, reference, entry)
        queue_audit(
            pipe,
            reference=reference,
            actor=actor,
            action="escalated",
            at=now,
            detail={"from": before.escalation_level, "to": level, "entry": entry.id},
        )
        return after

    return await _transact(redis, reference, plan)


async def record_message(
    redis: Redis,
    *,
    reference: str,
    actor: str,
    now: datetime,
    text: str,
    opted_out: Callable[[str], Awaitable[bool]],
) -> JournalEntry:
    """Journal an SMS to the migrant before it is queued; MessageRefused when it must not go.

    `opted_out(pseudonym)` tells whether that phone opted out (the conversation's profile).
    """
    entry = new_entry(JournalKind.MESSAGE, author=actor, at=now, text=text)
    pseudonym = await reply(redis.hget(keys.case(reference), "phone_pseudonym"))
    if pseudonym and await opted_out(text_of(pseudonym)):
        raise MessageRefused("the migrant opted out of SMS")

    def plan(loaded: Loaded, pipe: Any) -> JournalEntry:
        if loaded.case.phone is None:
            raise MessageRefused("the case's phone was erased")
        if loaded.answers_sms_safe == NO:
            raise MessageRefused("the migrant said SMS to this phone is not safe")
        _queue_journal(pipe, reference, entry)
        pipe.hset(keys.case(reference), "updated_at", iso(now))
        queue_audit(
            pipe,
            reference=reference,
            actor=actor,
            action="message_queued",
            at=now,
            detail={"entry": entry.id},
        )
        return entry

    return await _transact(redis, reference, plan)
