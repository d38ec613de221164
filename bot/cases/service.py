"""The case service: the rules of cases, beside the domain (docs/spec.md §6).

Lifecycle checks, what each change audits, when a message may go, which cases
an erasure closes and which fields it erases, what a migrant may withdraw,
when a case ends (retention) or is acknowledged (SLA), what a delivery status
means. Called by the admin API, the conversation loop, the worker and the
status webhook; `bot.store` keeps the keys, the scripts and their thin
callers, and gets the rules' data as arguments (`case_updates.transact`
writes what a plan here decided, in one script; a check that must run inside
a script, such as a migrant's withdrawal, gets its statuses from here).
The migrant's and the worker's side is `bot.cases.migrant`.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any

from redis.asyncio import Redis

from bot.cases import followups, lifecycle
from bot.cases.model import (
    MAX_ESCALATION_LEVEL,
    Case,
    CaseStatus,
    JournalEntry,
    JournalKind,
    Priority,
)
from bot.errors import CaseNotFound, EscalationRefused, MessageRefused
from bot.store import case_queries, deliveries, erasure, keys, phone_state, retention, sla
from bot.store.case_updates import Loaded, Write, transact
from bot.store.cases import references_of_phone, text_of

NO = "no"
OPTED_OUT_CODE = "21610"  # as bot.jobs.twilio_rest.OPTED_OUT_CODE
"""Twilio's error code for a recipient who answered STOP to the sender."""


UNCHANGED: Any = object()

# Audit actions of the changes this service makes (docs/spec.md §6: every change, erasure, read).
STATUS_CHANGED = "status_changed"
READ = "read"
ERASED_ACTION = "erased"
SMS_STATUS = "sms_status"

QUIET_ACTIONS = frozenset({READ, "searched", "exported"})
"""Audit actions that change nothing an operator watches the queue for (left out live)."""
SHOWN_DETAIL = ("kind", "priority", "channel", "from", "to", "status", "level")
"""Detail fields of an audit event the live feed may pass on (never personal data)."""

PERSONAL_FIELDS = ("phone", "phone_pseudonym", erasure.ANSWERS, erasure.JOURNAL,
                   erasure.REFERRAL_NOTES)
"""What identifies the migrant, erased with a case: the record's phone and its
pseudonym, the answers, the journal (notes, messages, escalation reasons) and the
operators' notes on referrals (a referral's record keeps no personal field)."""


async def read_case(redis: Redis, *, reference: str, actor: str,
                    now: datetime) -> tuple[Case, list[JournalEntry]]:
    """One case with its journal; the read of personal data is audited in the same step."""
    return await case_queries.read_case_audited(redis, reference=reference, actor=actor,
                                                now=now, action=READ)


async def erase_case(redis: Redis, *, reference: str, actor: str, now: datetime) -> bool:
    """Erase one case's personal fields (kept: kind, status, priority, dates); audited.

    False when it was erased already; CaseNotFound when it does not exist.
    """
    return await erasure.erase_case(redis, reference=reference, actor=actor, now=now,
                                       personal=PERSONAL_FIELDS, action=ERASED_ACTION)


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
            events.append((STATUS_CHANGED, {"from": before.status, "to": status}))
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

    return await transact(redis, reference, plan)


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

    return await transact(redis, reference, plan)


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

    return await transact(redis, reference, plan)


async def record_message(
    redis: Redis,
    *,
    reference: str,
    actor: str,
    now: datetime,
    text: str,
    opted_out: Callable[[str], Awaitable[bool]] | None = None,
) -> JournalEntry:
    """Journal an SMS to the migrant before it is queued; MessageRefused when it must not go.

    `opted_out(pseudonym)` tells whether that phone opted out (by default: its profile).
    """
    entry = new_entry(JournalKind.MESSAGE, author=actor, at=now, text=text)
    pseudonym = await redis.hget(keys.case(reference), "phone_pseudonym")
    if pseudonym and await (opted_out or partial(phone_state.opted_out, redis))(
            text_of(pseudonym)):
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

    return await transact(redis, reference, plan)


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
            write.audit(actor=actor, action=STATUS_CHANGED, at=now,
                        detail={"from": before.status, "to": CaseStatus.CLOSED,
                                "reason": reason})
            return True

        try:
            if await transact(redis, reference, plan):
                closed.append(reference)
        except CaseNotFound:
            continue
    return closed


async def record_delivery_status(redis: Redis, *, message_sid: str, status: str,
                                 error_code: str, now: datetime, followup_ttl: int) -> bool:
    """A Twilio status on its delivery, audited on the case once per status; a 21610
    marks the phone opted out; a check-in's SMS that never reached the phone is sent once
    more (`followups.not_received`). False when the message is none of ours."""
    recorded = await deliveries.record_status(
        redis, message_sid=message_sid, status=status, error_code=error_code, now=now,
        actor=followups.TWILIO, action=SMS_STATUS)
    if not recorded.known:
        return False
    if recorded.new and error_code == OPTED_OUT_CODE and recorded.phone_pseudonym:
        await deliveries.mark_opted_out(redis, recorded.phone_pseudonym)
    why = followups.SMS_NOT_RECEIVED.get(status)
    checkin = followups.parse_delivery_id(recorded.delivery_id) if why else None
    if recorded.new and why is not None and checkin is not None:
        await followups.not_received(redis, reference=checkin[0], number=checkin[1], why=why,
                                     now=now, ttl=followup_ttl)
    return True


# --- the worker's rules: when a case ends (retention), when it is in hand (SLA) ---------

ENDED_STATUSES = (CaseStatus.CLOSED, CaseStatus.WITHDRAWN)
"""A case ends, and its retention starts, when its status becomes one of these (both
terminal but for withdrawn → closed, which keeps the first end)."""


async def index_ended_cases(redis: Redis) -> int:
    """Bring the index of ended cases up to date from the audit; how many events were read."""
    return await retention.sync_ended_index(redis, action=STATUS_CHANGED,
                                            ended=[str(status) for status in ENDED_STATUSES])


def acknowledged(status: str, assignee: str) -> bool:
    """An operator has the case in hand: it moved past `new`, or someone is assigned."""
    return status != CaseStatus.NEW or bool(assignee)


async def unacknowledged_urgent(redis: Redis) -> list[sla.Unacknowledged]:
    """Urgent cases still `new` and unassigned, the oldest first."""
    candidates = await sla.cases_with(redis, status=CaseStatus.NEW, priority=Priority.URGENT)
    late = [found.case for found in candidates
            if not acknowledged(found.status, found.assignee)]
    return sorted(late, key=lambda case: case.created_at)


async def still_unacknowledged(redis: Redis, reference: str) -> bool:
    found = await sla.status_and_assignee(redis, reference)
    return found is not None and not acknowledged(*found)
