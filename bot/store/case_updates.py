"""Operator writes on a case: status, priority, assignee, escalation, journal.

Each write is optimistic: read the record, decide in Python with the
lifecycle machine, then one script (UPDATE_CASE, in the case's shard) checks
that the record is still the one read (its SHA-1) and writes the record, its
indexes, its journal and its audit events together; a concurrent write to the
record makes it read and decide again. No MULTI/WATCH: the same code runs on
one server, Sentinel and Redis Cluster.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from redis.asyncio import Redis

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
from bot.store.case_scripts import UPDATE_CASE
from bot.store.cases import (
    case_from_record,
    iso,
    references_of_phone,
    text_of,
    triage_score,
)
from bot.store.replies import reply

NO = "no"
MAX_ATTEMPTS = 50

T = TypeVar("T")


def index_keys(case: Case) -> set[str]:
    """Every index a case in this state belongs to."""
    shard = keys.shard_of(case.reference)
    found = {
        keys.cases_triage(shard),
        keys.cases_by_status(shard, case.status),
        keys.cases_by_kind(shard, case.kind),
        keys.cases_by_priority(shard, case.priority),
    }
    if case.assignee:
        found.add(keys.cases_by_assignee(shard, case.assignee))
    if case.escalated:
        found.add(keys.cases_escalated(shard))
    return found


@dataclass(frozen=True)
class Loaded:
    case: Case
    tri: int
    """The time part of the case's triage score (bot.store.cases.triage_score)."""
    phone_pseudonym: str
    answers_sms_safe: str


@dataclass
class Write:
    """What a plan decided to write; nothing at all when it stays empty."""

    after: Case | None = None
    """The record's new state (its indexes follow it)."""
    journal: JournalEntry | None = None
    updated_at: datetime | None = None
    events: list[tuple[str, str, datetime, dict[str, object]]] = field(default_factory=list)
    """(actor, action, at, detail) of each audit event."""

    def audit(self, *, actor: str, action: str, at: datetime,
              detail: dict[str, object]) -> None:
        self.events.append((actor, action, at, detail))


Plan = Callable[[Loaded, Write], T]


def _digest(flat: list[str]) -> str:
    return hashlib.sha1("\0".join(flat).encode()).hexdigest()  # noqa: S324 (a checksum)


async def _transact(redis: Redis, reference: str, plan: Plan[T]) -> T:
    """Read the record, run `plan(loaded, write)`, write it if the record did not change."""
    key = keys.case(reference)
    for _ in range(MAX_ATTEMPTS):
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(key)
            pipe.get(keys.case_answers(reference))
            raw, answers = await pipe.execute()
        if not raw:
            raise CaseNotFound(reference)
        flat = [text_of(part) for pair in raw.items() for part in pair]
        record = dict(zip(flat[::2], flat[1::2], strict=True))
        loaded = Loaded(
            case=case_from_record({**record,
                                   "answers": text_of(answers) if answers else ""}),
            tri=int(record.get("tri") or 0),
            phone_pseudonym=record.get("phone_pseudonym", ""),
            answers_sms_safe=json.loads(text_of(answers) if answers else "{}").get(
                "sms_safe", ""),
        )
        write = Write()
        result = plan(loaded, write)
        if write.after is None and write.journal is None and not write.events:
            return result
        outcome = int(await UPDATE_CASE.run(redis, *_update_call(loaded, write, _digest(flat))))
        if outcome == 1:
            return result
        if outcome == -1:
            raise CaseNotFound(reference)
    raise RuntimeError(f"case {reference} kept changing under {MAX_ATTEMPTS} writes")


def _update_call(loaded: Loaded, write: Write, digest: str) -> tuple[list[str],
                                                                     list[str | int]]:
    before = loaded.case
    reference = before.reference
    after = write.after or before
    old, new = index_keys(before), index_keys(after) if write.after else set()
    left = sorted(old - new) if write.after else []
    joined = sorted(new)
    fields: dict[str, str] = {}
    if write.after is not None:
        fields = {
            "status": str(after.status),
            "priority": str(after.priority),
            "assignee": after.assignee or "",
            "escalated": "1" if after.escalated else "0",
            "escalation_level": str(after.escalation_level),
            "updated_at": iso(after.updated_at),
        }
    elif write.updated_at is not None:
        fields = {"updated_at": iso(write.updated_at)}
    shard = keys.shard_of(reference)
    return (
        [keys.case(reference), keys.case_notes(reference), keys.shard_audit(shard),
         keys.case_trail(reference), *left, *joined],
        [
            digest,
            len(left),
            triage_score(after.priority, loaded.tri),
            json.dumps(fields),
            write.journal.model_dump_json() if write.journal else "",
            reference,
            json.dumps([[actor, action, iso(at), json.dumps(detail, sort_keys=True,
                                                            default=str)]
                        for actor, action, at, detail in write.events]),
        ],
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

    def plan(loaded: Loaded, write: Write) -> Case:
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
        write.after = after
        for action, detail in events:
            write.audit(actor=actor, action=action, at=now, detail=detail)
        return after

    return await _transact(redis, reference, plan)


def new_entry(kind: JournalKind, *, author: str, at: datetime, text: str) -> JournalEntry:
    return JournalEntry(id=secrets.token_hex(6), kind=kind, author=author, at=at, text=text)


async def add_note(
    redis: Redis, *, reference: str, actor: str, now: datetime, text: str
) -> JournalEntry:
    entry = new_entry(JournalKind.NOTE, author=actor, at=now, text=text)

    def plan(loaded: Loaded, write: Write) -> JournalEntry:
        write.journal = entry
        write.updated_at = now
        write.audit(actor=actor, action="note_added", at=now, detail={"entry": entry.id})
        return entry

    return await _transact(redis, reference, plan)


async def escalate(
    redis: Redis, *, reference: str, actor: str, now: datetime, reason: str, level: int
) -> Case:
    """Raise the escalation level (1 or 2, above the present one); the reason is journalled."""
    if not 1 <= level <= MAX_ESCALATION_LEVEL:
        raise ValueError("escalation level is 1 or 2")
    entry = new_entry(JournalKind.ESCALATION, author=actor, at=now, text=reason)

    def plan(loaded: Loaded, write: Write) -> Case:
        before = loaded.case
        if level <= before.escalation_level:
            raise EscalationRefused(
                f"already at level {before.escalation_level}: escalate only to a higher level"
            )
        after = before.model_copy(
            update=dict(escalated=True, escalation_level=level, updated_at=now)
        )
        write.after = after
        write.journal = entry
        write.audit(actor=actor, action="escalated", at=now,
                    detail={"from": before.escalation_level, "to": level, "entry": entry.id})
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

    def plan(loaded: Loaded, write: Write) -> JournalEntry:
        if loaded.case.phone is None:
            raise MessageRefused("the case's phone was erased")
        if loaded.answers_sms_safe == NO:
            raise MessageRefused("the migrant said SMS to this phone is not safe")
        write.journal = entry
        write.updated_at = now
        write.audit(actor=actor, action="message_queued", at=now, detail={"entry": entry.id})
        return entry

    return await _transact(redis, reference, plan)


ERASED = "erased"
"""The reason recorded when a migrant's erasure closes their open cases."""
_LEFT_OPEN_BY_ERASURE = frozenset({CaseStatus.CLOSED, CaseStatus.WITHDRAWN})


async def close_phone_cases(redis: Redis, *, pseudonym: str, actor: str, now: datetime,
                            reason: str = ERASED) -> list[str]:
    """Close every open case of a phone (status `closed`, the reason audited), so that
    they leave the triage queue: nobody is left waiting to call an erased number.

    Returns the references closed now. Run before the personal fields are erased.
    """
    closed: list[str] = []
    for reference in await references_of_phone(redis, pseudonym):

        def plan(loaded: Loaded, write: Write) -> bool:
            before = loaded.case
            if before.status in _LEFT_OPEN_BY_ERASURE:
                return False
            write.after = before.model_copy(update=dict(
                status=lifecycle.next_status(before.status, CaseStatus.CLOSED), updated_at=now))
            write.audit(actor=actor, action="status_changed", at=now,
                        detail={"from": before.status, "to": CaseStatus.CLOSED,
                                "reason": reason})
            return True

        try:
            if await _transact(redis, reference, plan):
                closed.append(reference)
        except CaseNotFound:
            continue
    return closed
