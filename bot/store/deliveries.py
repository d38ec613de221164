"""Outbound deliveries (SMS and on-call webhook calls): state, attempts, Twilio statuses.

A delivery has a deterministic id (`confirmation:<ref>`, `message:<ref>:<entry>`…),
so that a retried or re-delivered job finds what an earlier run did. Each run
claims the delivery before it calls out; a claim still held by an earlier run
of the same job, or one whose lease is over, or an attempt that ended in a
timeout, is *uncertain*: the message may have gone, and the caller checks
with Twilio before sending again.

Every outcome is written with its audit event on the case in one script (a
delivery record lives in its case's shard). Records hold no phone number and
no text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis

from bot.cases.model import JournalEntry
from bot.cases.references import REFERENCE_DIGITS
from bot.store import keys, phone_state, subscriptions
from bot.store.cases import iso, text_of
from bot.store.scripts import Script

WORKER = "worker"
# Long enough for status callbacks and for any re-delivery of a job.
DELIVERY_TTL_SECONDS = 30 * 24 * 3600


class Purpose(StrEnum):
    CONFIRMATION = "confirmation"
    MESSAGE = "message"
    ONCALL_SMS = "oncall_sms"
    ONCALL_WEBHOOK = "oncall_webhook"
    FOLLOWUP = "followup"
    """A follow-up check-in's first question by SMS, or the call that asks it."""


class DeliveryState(StrEnum):
    SENDING = "sending"
    RETRY = "retry"
    """The last attempt failed without sending (5xx, refused connection)."""
    UNKNOWN = "unknown"
    """The last attempt timed out: the message may have gone."""
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


FINISHED = frozenset({DeliveryState.SENT, DeliveryState.FAILED, DeliveryState.SKIPPED})


class Claim(StrEnum):
    CLAIMED = "claimed"
    """Nobody sent it yet: send."""
    UNCERTAIN = "uncertain"
    """An earlier attempt may have sent it: look before sending again."""
    BUSY = "busy"
    """Another run holds the claim: try later."""
    DONE = "done"
    """Sent, failed for good or skipped already: nothing to do."""


CLAIM_DELIVERY = Script.load("claim_delivery")

# Twilio's message statuses, in the order a message goes through them.
STATUS_RANK = {
    "accepted": 0, "scheduled": 0, "queued": 1, "sending": 2, "sent": 3,
    "receiving": 3, "received": 4, "delivered": 4, "undelivered": 4, "failed": 4, "read": 5,
    "canceled": 4,
}  # fmt: skip

RECORD_STATUS = Script.load("record_status")

FINISH_DELIVERY = Script.load("finish_delivery")

TAKE_SID = Script.load("take_sid")

@dataclass(frozen=True)
class Claimed:
    claim: Claim
    attempt: int = 0
    state: str = ""
    since: int = 0
    """Epoch second the uncertain attempt started (UNCERTAIN only)."""


async def claim(
    redis: Redis,
    *,
    delivery_id: str,
    reference: str,
    purpose: Purpose,
    job_id: str,
    job_try: int,
    now: datetime,
    lease_seconds: int,
) -> Claimed:
    raw = await CLAIM_DELIVERY.run(
        redis,
        [keys.delivery(delivery_id, reference)],
        [job_id, job_try, int(now.timestamp()), lease_seconds, reference, str(purpose),
         DELIVERY_TTL_SECONDS],
    )
    outcome = [text_of(part) for part in raw]
    found = Claim(outcome[0])
    if found is Claim.DONE:
        return Claimed(found, state=outcome[1])
    if found is Claim.BUSY:
        return Claimed(found)
    since = int(outcome[2]) if found is Claim.UNCERTAIN and outcome[2] else 0
    return Claimed(found, attempt=int(outcome[1]), since=since)


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What became of one attempt, and the audit event that says so."""

    state: DeliveryState
    action: str
    detail: Mapping[str, object]
    sid: str = ""
    error: str = ""


async def finish(
    redis: Redis,
    *,
    delivery_id: str,
    reference: str,
    now: datetime,
    outcome: Outcome,
    phone_pseudonym: str = "",
) -> None:
    """Record an attempt's outcome and audit it on the case, in one script.

    The MessageSid's look-up key (its own slot) is written first: a status
    callback can find the delivery as soon as the outcome is recorded.
    """
    record: dict[str, str] = {"state": str(outcome.state), "finished_at": iso(now)}
    if outcome.sid:
        record["sid"] = outcome.sid
    if outcome.error:
        record["error"] = outcome.error
    if phone_pseudonym:
        record["phone_pseudonym"] = phone_pseudonym
    if outcome.sid:
        await redis.set(keys.delivery_by_sid(outcome.sid), _owner(delivery_id, reference),
                        ex=DELIVERY_TTL_SECONDS)
    shard = keys.shard_of(reference)
    await FINISH_DELIVERY.run(
        redis,
        [keys.delivery(delivery_id, reference), keys.shard_audit(shard), keys.case(reference),
         keys.case_trail(reference)],
        [json.dumps(record), DELIVERY_TTL_SECONDS, reference, WORKER, outcome.action, iso(now),
         json.dumps({"delivery": delivery_id, **outcome.detail}, sort_keys=True)],
    )


def _owner(delivery_id: str, reference: str) -> str:
    """What a MessageSid's look-up key holds: the delivery it belongs to."""
    return json.dumps({"delivery": delivery_id, "reference": reference})


async def take_sid(redis: Redis, *, sid: str, delivery_id: str, reference: str) -> bool:
    """Record `sid` as this delivery's unless another delivery has it; whether it is this
    one's. One script, so two deliveries checking at once for a message of the same text
    to the same phone never both take it (`SET NX GET` would do, but not on Redis 6.2)."""
    taken = await TAKE_SID.run(redis, [keys.delivery_by_sid(sid)],
                               [_owner(delivery_id, reference), delivery_id,
                                DELIVERY_TTL_SECONDS])
    return int(taken) == 1


def reference_of(delivery_id: str) -> str:
    """The case reference a delivery id names (`confirmation:<ref>`, `message:<ref>:…`)."""
    for part in delivery_id.split(":"):
        if len(part) == REFERENCE_DIGITS and part.isdigit():
            return part
    raise ValueError(f"no reference in delivery id {delivery_id!r}")


async def state_of(redis: Redis, delivery_id: str) -> dict[str, str]:
    """The stored record of a delivery (tests and diagnostics)."""
    key = keys.delivery(delivery_id, reference_of(delivery_id))
    raw = await redis.hgetall(key)
    return {text_of(k): text_of(v) for k, v in raw.items()}


@dataclass(frozen=True)
class StatusRecorded:
    known: bool
    """The MessageSid belongs to one of our deliveries."""
    new: bool
    """This status was not recorded before for that message."""
    phone_pseudonym: str = ""
    delivery_id: str = ""
    """The delivery the message was (`followup:<ref>:<n>`, `confirmation:<ref>`...)."""


async def record_status(
    redis: Redis, *, message_sid: str, status: str, error_code: str, now: datetime,
    actor: str, action: str,
) -> StatusRecorded:
    """Record a Twilio status callback against its delivery, audited on the case once
    (as `actor` and `action`)."""
    raw = await redis.get(keys.delivery_by_sid(message_sid))
    if raw is None:
        return StatusRecorded(known=False, new=False)
    found: dict[str, Any] = json.loads(text_of(raw))
    delivery_id, reference = str(found["delivery"]), str(found["reference"])
    detail = {
        "delivery": delivery_id,
        "sid": message_sid,
        "status": status,
        "error_code": error_code or None,
    }
    result = await RECORD_STATUS.run(
        redis,
        [keys.delivery(delivery_id, reference), keys.shard_audit(keys.shard_of(reference)),
         keys.case(reference), keys.case_trail(reference)],
        [status, STATUS_RANK.get(status, 0), error_code, iso(now),
         json.dumps(detail, sort_keys=True), reference, actor, action],
    )
    return StatusRecorded(known=True, new=int(result[0]) == 1,
                          phone_pseudonym=text_of(result[1]), delivery_id=delivery_id)


async def mark_opted_out(redis: Redis, pseudonym: str) -> None:
    """Mark a phone opted out (Twilio answered 21610: the recipient sent STOP), which ends
    its alert subscription too."""
    await subscriptions.unsubscribe(redis, pseudonym=pseudonym)
    await phone_state.update_profile(redis, pseudonym=pseudonym, ttl=1, opt_out=True)


# --- who a migrant's SMS goes to ---------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    """What the worker reads of a case before it writes to the migrant."""

    reference: str
    phone: str | None
    """None once the case's personal fields are erased."""
    phone_pseudonym: str
    language: str
    channel: str
    sms_safe: str
    """The migrant's answer to "is SMS to this phone safe?" ('' when not asked)."""
    opted_out: bool


async def recipient(redis: Redis, reference: str) -> Recipient | None:
    """The migrant of a case, as of now; None when there is no such case."""
    fields = ("reference", "phone", "phone_pseudonym", "language", "channel")
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hmget(keys.case(reference), list(fields))
        pipe.get(keys.case_answers(reference))
        row, raw_answers = await pipe.execute()
    values = [text_of(v) if v is not None else None for v in row]
    found = dict(zip(fields, values, strict=True))
    if found["reference"] is None:
        return None
    pseudonym = found["phone_pseudonym"] or ""
    answers: Any = json.loads(text_of(raw_answers) if raw_answers else "{}")
    return Recipient(
        reference=reference,
        phone=found["phone"] or None,
        phone_pseudonym=pseudonym,
        language=found["language"] or "",
        channel=found["channel"] or "",
        sms_safe=str(answers.get("sms_safe", "")) if isinstance(answers, dict) else "",
        opted_out=bool(pseudonym) and await phone_state.opted_out(redis, pseudonym),
    )


async def journal_entry(redis: Redis, reference: str, entry_id: str) -> JournalEntry | None:
    """One entry of a case's journal (None once erased)."""
    for raw in await redis.lrange(keys.case_notes(reference), 0, -1):
        entry = JournalEntry.model_validate_json(text_of(raw))
        if entry.id == entry_id:
            return entry
    return None
