"""The case service: the rules of cases, beside the domain (SPEC §6).

Lifecycle checks, what each change audits, when a message may go, which cases
an erasure closes, what a delivery status means. Called by the admin API, the
conversation loop, the worker and the status webhook; `bot.store` keeps the
keys, the scripts and their thin callers (`case_updates.transact` writes what
a plan here decided, in one script).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

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
from bot.store import deliveries, keys
from bot.store.case_updates import Loaded, Write, transact
from bot.store.cases import references_of_phone, text_of
from bot.store.replies import reply

NO = "no"
OPTED_OUT_CODE = "21610"  # as bot.jobs.twilio_rest.OPTED_OUT_CODE
"""Twilio's error code for a recipient who answered STOP to the sender."""


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
            write.audit(actor=actor, action="status_changed", at=now,
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
                                 error_code: str, now: datetime) -> bool:
    """A Twilio status on its delivery, audited on the case once per status; a 21610
    marks the phone opted out. False when the message is none of ours."""
    recorded = await deliveries.record_status(
        redis, message_sid=message_sid, status=status, error_code=error_code, now=now)
    if not recorded.known:
        return False
    if recorded.new and error_code == OPTED_OUT_CODE and recorded.phone_pseudonym:
        await deliveries.mark_opted_out(redis, recorded.phone_pseudonym)
    return True
