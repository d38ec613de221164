"""Follow-up after return, the rules (docs/spec.md §11): when check-ins are scheduled, who may be
asked and how, what cancels them, what their statuses mean.

A return request whose migrant said yes to `followup_consent` gets one check-in at
each of `HELPLINE_FOLLOWUP_DAYS` after it becomes `returned`; an operator may ask
for one now. A check-in goes by SMS or by a call (the case's channel when it is
one of them; a USSD case by SMS, or by a call when the migrant said SMS to the
phone is not safe). Withdrawal, erasure and `STOP` cancel what is not answered.

Every status change reaches the shard's audit stream, whoever makes it: the
worker reads it from a cursor each second (`sync_from_audit`) to schedule the
check-ins of returned cases and cancel those of withdrawn or erased ones, and
the admin API schedules at once too (scheduling twice schedules once). The
store (`bot.store.followups`) gets these rules as arguments.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis

from bot.cases import report
from bot.cases.model import Case, CaseKind, CaseStatus
from bot.engine.session import RecordFollowup
from bot.errors import CaseNotFound, FollowupRefused
from bot.store import followups as store
from bot.store import keys
from bot.store.cases import iso, read_case, text_of
from bot.types import Channel

CONSENT_ANSWER = "followup_consent"
YES, NO = "yes", "no"
SMS_SAFE_ANSWER = "sms_safe"
MIGRANT = "migrant"
WORKER = "worker"
STATUS_CHANGED = "status_changed"  # as bot.cases.service.STATUS_CHANGED
CREATED = "created"  # as CREATE_CASE audits it (bot/store/case_scripts.py)
ERASED_ACTION = "erased"  # as bot.cases.service.ERASED_ACTION
SYNC_BATCH = 1000

# Audit actions (scheduling has none of its own: the status change to `returned` is it)
REQUESTED = "followup_requested"
ANSWERED = "followup_answered"
EXPIRED = "followup_expired"
CANCELLED = "followups_cancelled"


class FollowupStatus(StrEnum):
    SCHEDULED = "scheduled"
    SENT = "sent"
    ANSWERED = "answered"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


# Stored codes (bot/store/lua/followups_record.lua) and what each means in the API:
# a check-in due whose job is queued (`q`) is still `scheduled` until it is sent.
_STATUS_OF_CODE = {"s": FollowupStatus.SCHEDULED, "q": FollowupStatus.SCHEDULED,
                   "t": FollowupStatus.SENT, "a": FollowupStatus.ANSWERED,
                   "x": FollowupStatus.EXPIRED, "c": FollowupStatus.CANCELLED}
NOT_SENT = "sq"
OPEN = "sqt"
"""Codes of a check-in not answered, expired or cancelled: what cancelling ends."""
ANSWERABLE = "tqx"
"""A survey may be answered once its first question went (or while it is going), and
late: an answer after the expiry is kept."""
_CODE_OF_CHANNEL = {Channel.SMS: "s", Channel.VOICE: "v"}
_CHANNEL_OF_CODE = {code: channel for channel, code in _CODE_OF_CHANNEL.items()}
CALL_ME, ALARM = "C", "A"


class CancelReason(StrEnum):
    WITHDRAWN = "withdrawn"
    ERASED = "erased"
    OPTED_OUT = "opted_out"
    NO_CONSENT = "no_consent"
    SMS_NOT_SAFE = "sms_not_safe"


@dataclass(frozen=True)
class Followup:
    """One check-in as the API shows it."""

    id: int
    due_at: datetime
    channel: Channel
    status: FollowupStatus
    scores: dict[str, float | None] | None
    answered_at: datetime | None
    sent_at: datetime | None = None
    alarm: bool = False
    call_asked: bool = False
    call_again: bool = False
    """A second try: the check-in before it reached nobody (`not_received`)."""


def _moment(epoch: int | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None


def composite(scores: Sequence[float | None]) -> float | None:
    """The mean of the dimensions that have a score (docs/spec.md §11's `composite`)."""
    present = [value for value in scores if value is not None]
    return round(sum(present) / len(present), 3) if present else None


def scores_of(entry: store.Entry) -> dict[str, float | None] | None:
    if entry.answered is None:
        return None
    economic, social, psychosocial = entry.scores
    return {"economic": economic, "social": social, "psychosocial": psychosocial,
            "composite": composite(entry.scores)}


def view(entry: store.Entry, *, cancelled_now: bool = False) -> Followup:
    status = _STATUS_OF_CODE.get(entry.status, FollowupStatus.SCHEDULED)
    if cancelled_now and entry.status in OPEN:
        status = FollowupStatus.CANCELLED
    return Followup(id=entry.id, due_at=datetime.fromtimestamp(entry.due, UTC),
                    channel=_CHANNEL_OF_CODE.get(entry.channel, Channel.SMS), status=status,
                    scores=scores_of(entry), answered_at=_moment(entry.answered),
                    sent_at=_moment(entry.sent), alarm=ALARM in entry.flags,
                    call_asked=CALL_ME in entry.flags,
                    call_again=entry.origin == store.CALLED_AGAIN)


def has_consent(case: Case) -> bool:
    return case.kind is CaseKind.RETURN_REQUEST and case.answers.get(CONSENT_ANSWER) == YES


def channel_for(case: Case) -> Channel:
    """How a scheduled check-in reaches the migrant (see the module)."""
    if case.channel in (Channel.SMS, Channel.VOICE):
        return Channel(case.channel)
    return Channel.VOICE if case.answers.get(SMS_SAFE_ANSWER) == NO else Channel.SMS


def why_not(case: Case, channel: Channel, *, opted_out: bool) -> CancelReason | None:
    """Why this check-in may not go, if it may not."""
    if case.phone is None or case.erased_at is not None:
        return CancelReason.ERASED
    if case.status is CaseStatus.WITHDRAWN:
        return CancelReason.WITHDRAWN
    if not has_consent(case):
        return CancelReason.NO_CONSENT
    if opted_out:
        return CancelReason.OPTED_OUT
    if channel is Channel.SMS and case.answers.get(SMS_SAFE_ANSWER) == NO:
        return CancelReason.SMS_NOT_SAFE
    return None


REFUSALS = {
    CancelReason.ERASED: "the case's personal data was erased",
    CancelReason.WITHDRAWN: "the return request was withdrawn",
    CancelReason.NO_CONSENT: "the migrant did not agree to be contacted after the return "
                             "(followup_consent)",
    CancelReason.OPTED_OUT: "the migrant opted out (STOP)",
    CancelReason.SMS_NOT_SAFE: "the migrant said SMS to this phone is not safe",
}


async def followups_of(redis: Redis, case: Case, *, opted_out: bool) -> list[Followup]:
    """A case's check-ins; those a withdrawal, erasure or STOP ended show `cancelled` at
    once (the worker writes it within a second, or when one comes due)."""
    record = await store.read(redis, case.reference)
    if record is None:
        return []
    ended = (case.phone is None or case.erased_at is not None
             or case.status is CaseStatus.WITHDRAWN or opted_out)
    return [view(entry, cancelled_now=ended) for entry in record.entries]


async def schedule_returned(redis: Redis, *, reference: str, returned_at: datetime,
                            days: Sequence[int], ttl: int) -> int:
    """Record that the case was returned and schedule its check-ins (consent given);
    how many were scheduled now (0 when done before)."""
    try:
        case = await read_case(redis, reference)
    except CaseNotFound:
        return 0
    return max(0, await store.schedule(
        redis, reference=reference, returned_at=int(returned_at.timestamp()),
        consent_answer=CONSENT_ANSWER, consent_yes=YES, days=days,
        channel=_CODE_OF_CHANNEL[channel_for(case)], ttl=ttl))


async def request_now(redis: Redis, *, reference: str, channel: Channel | None,
                      opted_out: bool, ttl: int, actor: str, now: datetime) -> Followup:
    """A check-in now (an operator's); FollowupRefused naming why it may not go."""
    case = await read_case(redis, reference)
    chosen = channel or (Channel(case.channel) if case.channel in _CODE_OF_CHANNEL
                         else Channel.SMS)
    refused = why_not(case, chosen, opted_out=opted_out)
    if refused is not None:
        raise FollowupRefused(REFUSALS[refused])
    followup_id = await store.add(redis, reference=reference, now=int(now.timestamp()),
                                  channel=_CODE_OF_CHANNEL[chosen], ttl=ttl, actor=actor,
                                  action=REQUESTED, at=iso(now))
    if followup_id < 0:
        raise CaseNotFound(reference)
    return Followup(id=followup_id, due_at=now, channel=chosen,
                    status=FollowupStatus.SCHEDULED, scores=None, answered_at=None)


async def cancel(redis: Redis, *, reference: str, reason: CancelReason, ttl: int,
                 actor: str, now: datetime, ids: str = "*") -> int:
    """Cancel the case's check-ins not answered yet (all, or `ids`); how many."""
    return await store.mark(redis, reference=reference, ids=ids, sources=OPEN, target="c",
                            now=int(now.timestamp()), ttl=ttl, actor=actor,
                            action=CANCELLED, at=iso(now),
                            detail=json.dumps({"reason": str(reason)}))


class Unanswered(StrEnum):
    """Why a check-in went to nobody, as Twilio told it (the audit's `reason`)."""

    BUSY = "busy"
    NO_ANSWER = "no_answer"
    VOICEMAIL = "voicemail"  # or a fax: Twilio's `AnsweredBy` said so, nothing was said
    NOT_DELIVERED = "not_delivered"  # an SMS the network could not hand to the phone
    FAILED = "failed"  # the call or SMS could not go at all: the number may not work


SMS_NOT_RECEIVED = {"undelivered": Unanswered.NOT_DELIVERED, "failed": Unanswered.FAILED}
"""Twilio's statuses of an SMS that never reached the phone."""
CALL_AGAIN_AFTER = timedelta(hours=4)
"""A check-in nobody received (a call nobody took, an SMS not delivered) is sent once more
this long after, at another time of the day (the quiet hours still hold it); that second
one is not sent again."""
TWILIO = "twilio"
"""The audit actor of what Twilio reports (statuses of our SMS and calls)."""


async def not_received(redis: Redis, *, reference: str, number: int, why: Unanswered,
                       now: datetime, ttl: int) -> int:
    """Check-in `number` went to nobody: it expires now and, unless it could not go at all
    (`FAILED`) or was already a second one, is sent again after `CALL_AGAIN_AFTER`. The
    new check-in's id, 0 for none, -1 when it was no sent, unanswered one (an answered
    check-in, a status told twice)."""
    again = None if why is Unanswered.FAILED else int((now + CALL_AGAIN_AFTER).timestamp())
    return await store.unanswered(redis, reference=reference, followup_id=number,
                                  again_at=again, ttl=ttl, actor=TWILIO, action=EXPIRED,
                                  at=iso(now), reason=str(why))


async def call_unanswered(redis: Redis, *, followup: str, why: Unanswered, now: datetime,
                          ttl: int) -> int:
    """A check-in call (`followup`, its token) nobody took: `not_received`."""
    found = parse_token(followup)
    if found is None:
        return -1
    reference, number = found
    return await not_received(redis, reference=reference, number=number, why=why, now=now,
                              ttl=ttl)


def delivery_id(reference: str, number: int) -> str:
    """The delivery (and job) id of one check-in's sending."""
    return f"followup:{reference}:{number}"


def parse_delivery_id(value: str) -> tuple[str, int] | None:
    """The check-in a delivery id names, or None (another delivery)."""
    kind, _, rest = value.partition(":")
    return parse_token(rest.replace(":", ".", 1)) if kind == "followup" else None


def token(reference: str, followup_id: int) -> str:
    """How a check-in is named in its survey's session (`bot.engine.survey.FOLLOWUP_ANSWER`)."""
    return f"{reference}.{followup_id}"


def parse_token(value: str) -> tuple[str, int] | None:
    reference, _, number = value.partition(".")
    if len(reference) != 8 or not reference.isdigit() or not number.isdigit():
        return None
    return reference, int(number)


def queue_answered(pipe: Any, effect: RecordFollowup, *, channel: Channel, now: datetime,
                   ttl: int) -> None:
    """Queue the record of a survey's scores on its check-in (the conversation's commit)."""
    found = parse_token(effect.followup)
    if found is None:
        return
    reference, followup_id = found
    scores = [effect.scores.get(name) for name in ("economic", "social", "psychosocial")]
    flags = (ALARM if effect.alarm else "") + (CALL_ME if effect.call else "")
    detail = {"channel": str(channel), "scores": {**dict(effect.scores)},
              "alarm": effect.alarm, "call": effect.call}
    store.queue_mark(pipe, reference=reference, ids=str(followup_id), sources=ANSWERABLE,
                     target="a", now=int(now.timestamp()), ttl=ttl, actor=MIGRANT,
                     action=ANSWERED, at=iso(now), detail=json.dumps(detail),
                     scores=store.encode_scores(scores), flags=flags)


# --- the worker's side: from the audit stream, and what comes due ---------------------


@dataclass(frozen=True)
class _Event:
    reference: str
    action: str
    to: str
    at: datetime


def _event(fields: dict[str, str]) -> _Event | None:
    action, reference = fields.get("action", ""), fields.get("reference", "")
    if action not in (STATUS_CHANGED, ERASED_ACTION, CREATED) or len(reference) != 8:
        return None
    try:
        detail: Any = json.loads(fields.get("detail") or "{}")
        at = datetime.fromisoformat(fields["at"])
    except (KeyError, ValueError):
        return None
    to = str(detail.get("to", "")) if isinstance(detail, dict) else ""
    return _Event(reference, action, to, at)


async def sync_from_audit(redis: Redis, *, days: Sequence[int], ttl: int, now: datetime,
                          batch: int = SYNC_BATCH) -> int:
    """Schedule the check-ins of cases returned, cancel those of cases withdrawn or erased,
    and refresh what the programme report knows of every case created, changed or erased,
    since the last call (each shard's audit stream from its cursor); events read."""
    read = 0
    for shard in keys.SHARDS:
        cursor = await store.sync_cursor(redis, shard)
        while True:
            entries = await redis.xrange(keys.shard_audit(shard), min=f"({cursor}", max="+",
                                         count=batch)
            if not entries:
                break
            changed: set[str] = set()
            for _entry_id, raw in entries:
                fields = {text_of(k): text_of(v) for k, v in (raw or {}).items()}
                event = _event(fields)
                if event is not None:
                    changed.add(event.reference)
                    await _apply(redis, event, days=days, ttl=ttl, now=now)
            await report.refresh(redis, changed)
            # A crash before the cursor moves reads the events again: each is idempotent.
            cursor = text_of(entries[-1][0])
            await store.set_sync_cursor(redis, shard, cursor)
            read += len(entries)
    return read


async def _apply(redis: Redis, event: _Event, *, days: Sequence[int], ttl: int,
                 now: datetime) -> None:
    if event.action == STATUS_CHANGED and event.to == CaseStatus.RETURNED:
        await schedule_returned(redis, reference=event.reference, returned_at=event.at,
                                days=days, ttl=ttl)
    elif event.action == STATUS_CHANGED and event.to == CaseStatus.WITHDRAWN:
        await cancel(redis, reference=event.reference, reason=CancelReason.WITHDRAWN,
                     ttl=ttl, actor=WORKER, now=now)
    elif event.action == ERASED_ACTION:
        await cancel(redis, reference=event.reference, reason=CancelReason.ERASED, ttl=ttl,
                     actor=WORKER, now=now)
