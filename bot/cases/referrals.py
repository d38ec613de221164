"""Referrals of a case to a protection partner's system (docs/spec.md §12: Primero), the rules.

An operator refers a case with the consent said (given by the migrant, or recorded
by the operator on a call); the referral is refused while its system is not
configured, once the case is erased, and while another referral of the case is
pending or sent (the partner must not get the case twice). The request is audited
(`referred`, with the actor and the consent) in the same step that leaves the
worker its event; the worker's hand-off is `bot.jobs.referrals`, which records
each outcome through `record_outcome`.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis

from bot.errors import CaseNotFound, ReferralRefused
from bot.store import referrals as store
from bot.store.cases import case_exists, iso
from bot.store.referrals import Created, Erased, Missing, StillOpen

REFERRED = "referred"
SENT_ACTION = "referral_sent"
FAILED_ACTION = "referral_failed"
ATTEMPT_FAILED_ACTION = "referral_attempt_failed"
LINKED_ACTION = "referral_linked"
"""The partner's case number read after the referral was recorded as sent."""
WORKER = "worker"


class ReferralSystem(StrEnum):
    PRIMERO = "primero"


class ReferralConsent(StrEnum):
    GIVEN_BY_MIGRANT = "given_by_migrant"
    RECORDED_BY_OPERATOR = "recorded_by_operator"


class ReferralStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


OPEN_STATUSES = (ReferralStatus.PENDING, ReferralStatus.SENT)
"""A referral in one of these keeps the case from being referred again."""

NOT_CONFIGURED = ("Primero is not configured on this helpline "
                  "(PRIMERO_URL, PRIMERO_USER and PRIMERO_PASSWORD)")


class Referral(BaseModel):
    """One referral as stored (JSON in the case's shard) and shown to operators."""

    model_config = ConfigDict(frozen=True)

    id: str
    system: ReferralSystem
    status: ReferralStatus
    consent: ReferralConsent
    requested_by: str
    external_id: str | None = None
    """The partner's case number (Primero's `case_id_display`) once known."""
    error: str | None = None
    """Why it failed, or why its last try did (the partner's words for a refusal)."""
    attempts: int = 0
    created_at: datetime
    updated_at: datetime
    note: str | None = None
    """The operator's note: kept apart (personal data, erased with the case)."""


async def refer_case(redis: Redis, *, reference: str, actor: str, now: datetime,
                     system: ReferralSystem, consent: ReferralConsent, note: str | None,
                     configured: bool) -> Referral:
    """Record a pending referral and leave the worker its event; ReferralRefused (409)
    when it may not be made, CaseNotFound (404: first, whatever else is wrong)."""
    if not configured:
        if not await case_exists(redis, reference):
            raise CaseNotFound(reference)
        raise ReferralRefused(NOT_CONFIGURED)
    referral = Referral(id=secrets.token_hex(6), system=system, status=ReferralStatus.PENDING,
                        consent=consent, requested_by=actor, created_at=now, updated_at=now)
    outcome = await store.create(
        redis, reference=reference, referral_id=referral.id,
        record=referral.model_dump(mode="json", exclude={"note"}), note=note or "",
        actor=actor, action=REFERRED, at=now,
        detail={"referral": referral.id, "system": system, "consent": consent},
        open_statuses=[str(status) for status in OPEN_STATUSES])
    match outcome:
        case Created():
            return referral.model_copy(update={"note": note or None})
        case Missing():
            raise CaseNotFound(reference)
        case Erased():
            raise ReferralRefused("the case was erased: nothing is left to refer")
        case StillOpen(referral_id=other, status=status):
            raise ReferralRefused(f"a referral of this case is {status} already ({other}): "
                                  "the partner would get the case twice")
    raise AssertionError(outcome)  # pragma: no cover


async def referrals_of(redis: Redis, reference: str) -> list[Referral]:
    """The case's referrals, oldest first, with their notes."""
    found = await store.read_all(redis, reference)
    referrals = [Referral.model_validate_json(raw).model_copy(update={"note": found.notes.get(id_)})
                 for id_, raw in found.records.items()]
    return sorted(referrals, key=lambda referral: (referral.created_at, referral.id))


async def referral(redis: Redis, reference: str, referral_id: str) -> Referral | None:
    raw = await store.read_one(redis, reference, referral_id)
    return None if raw is None else Referral.model_validate_json(raw)


async def record_outcome(redis: Redis, *, reference: str, referral_id: str,
                         now: datetime, changes: dict[str, object],
                         from_statuses: tuple[ReferralStatus, ...], action: str,
                         detail: dict[str, object]) -> Referral | None:
    """Apply the worker's `changes` if the referral is still in one of `from_statuses`,
    audited as `action` (the worker's); the referral after, or None when nothing changed."""
    after = await store.update(
        redis, reference=reference, referral_id=referral_id,
        changes={**changes, "updated_at": iso(now)},
        from_statuses=[str(status) for status in from_statuses], actor=WORKER, action=action,
        at=now, detail={"referral": referral_id, **detail})
    return None if after is None else Referral.model_validate_json(after)
