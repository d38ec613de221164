"""The hand-off of a referral to Primero (docs/spec.md §12), once, however often the job runs.

The case goes to Primero under an id derived from our reference
(`bot.cases.primero_case`), the same on every try: when an earlier try went
through (its answer lost with a timeout, or its worker killed before recording
it), Primero answers the repeat with 409, read as success. A 204 (Primero's
answer to a client-given id) carries no case number: it is read back with
`GET /api/v2/cases/{id}`. 5xx, 408, 429 and timeouts are tried again after
Primero's `Retry-After`, else with the worker's back-off, then the referral
fails with the reason (when the last try had no answer at all, Primero is asked
first whether it holds the case: then it went); any other refusal (a 422) fails
it at once, in Primero's words. The job reads the case when it runs: a case
erased in between is not sent.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.cases import referrals
from bot.cases.primero_case import primero_case, primero_case_id
from bot.cases.referrals import (
    ATTEMPT_FAILED_ACTION,
    FAILED_ACTION,
    LINKED_ACTION,
    SENT_ACTION,
    Referral,
    ReferralStatus,
)
from bot.errors import CaseNotFound
from bot.jobs.deps import Deps, deps_of, job_identity
from bot.jobs.errors import PrimeroFailed
from bot.jobs.primero_api import PrimeroClient
from bot.jobs.queue import RetryLater
from bot.observability import typed_id
from bot.store.cases import read_case

log = logging.getLogger(__name__)

REFER_CASE = "refer_case"
NOT_CONFIGURED = "Primero is not configured on this worker (PRIMERO_URL)"
ERASED = "the case was erased before it went: nothing was sent"
PENDING = (ReferralStatus.PENDING,)
SENT = (ReferralStatus.SENT,)


def referral_job_id(referral_id: str) -> str:
    return f"referral:{referral_id}"


async def refer_case(ctx: dict[str, Any], reference: str, referral_id: str) -> str:
    """Send a pending referral to Primero, or finish reading back a sent one's number."""
    deps = deps_of(ctx)
    _, job_try = job_identity(ctx)
    found = await referrals.referral(deps.redis, reference, referral_id)
    if found is None:
        return "no such referral"
    if found.status is ReferralStatus.FAILED:
        return str(found.status)
    client = deps.primero
    if found.status is ReferralStatus.SENT:
        if found.external_id or client is None:
            return str(found.status)
        return await _read_number(deps, client, reference, found, job_try)
    if client is None:
        return await _failed(deps, reference, found, NOT_CONFIGURED, found.attempts)
    try:
        case = await read_case(deps.redis, reference)
    except CaseNotFound:
        case = None
    if case is None or case.erased_at is not None:
        return await _failed(deps, reference, found, ERASED, found.attempts)
    settings = deps.settings
    body = primero_case(case, module_id=settings.primero_module, org_name=settings.org_name)
    attempt = found.attempts + 1
    try:
        created = await client.create_case(body)
    except PrimeroFailed as failed:
        return await _attempt_failed(deps, reference, found, failed, attempt, job_try)
    number, unread = created.case_id_display, None
    if number is None:
        try:
            number = await client.case_number(primero_case_id(reference, settings.org_name),
                                              reference=reference)
        except PrimeroFailed as failed:
            if created.existed and not failed.retry:
                return await _failed(deps, reference, found, failed.reason, attempt)
            unread = failed
    await _sent(deps, reference, found, number, attempt, existed=created.existed)
    if unread is not None:
        return await _number_unread(deps, reference, found, unread, job_try)
    return str(ReferralStatus.SENT)


async def _sent(deps: Deps, reference: str, found: Referral, number: str | None, attempt: int,
                *, existed: bool) -> None:
    await referrals.record_outcome(
        deps.redis, reference=reference, referral_id=found.id, now=deps.clock(),
        changes={"status": ReferralStatus.SENT, "external_id": number, "error": None,
                 "attempts": attempt},
        from_statuses=PENDING, action=SENT_ACTION,
        detail={"external_id": number, "attempt": attempt, "existed": existed})
    log.info("referral %s of %s sent to Primero (attempt %d%s)", found.id,
             typed_id("case", reference), attempt, ", it had gone before" if existed else "")


async def _read_number(deps: Deps, client: PrimeroClient, reference: str, found: Referral,
                       job_try: int) -> str:
    """A sent referral whose case number could not be read when it went: read it now."""
    case_id = primero_case_id(reference, deps.settings.org_name)
    try:
        number = await client.case_number(case_id, reference=reference)
    except PrimeroFailed as failed:
        return await _number_unread(deps, reference, found, failed, job_try)
    await _link(deps, reference, found, number, None)
    return str(ReferralStatus.SENT)


async def _number_unread(deps: Deps, reference: str, found: Referral, failed: PrimeroFailed,
                         job_try: int) -> str:
    """The referral went but its number could not be read: later, or never (said so)."""
    if failed.retry and not deps.retry.gives_up(job_try):
        log.warning("Primero's case number of referral %s not read yet (%s); trying again",
                    found.id, failed.status or "no answer")
        raise RetryLater(_delay(deps, failed, job_try))
    await _link(deps, reference, found, None,
                f"Primero's case number could not be read: {failed.reason}")
    return str(ReferralStatus.SENT)


async def _link(deps: Deps, reference: str, found: Referral, number: str | None,
                error: str | None) -> None:
    await referrals.record_outcome(
        deps.redis, reference=reference, referral_id=found.id, now=deps.clock(),
        changes={"external_id": number, "error": error}, from_statuses=SENT,
        action=LINKED_ACTION, detail={"external_id": number, "error": error})


def _delay(deps: Deps, failed: PrimeroFailed, job_try: int) -> float:
    """Primero's `Retry-After` when it gave one, else the worker's back-off."""
    if failed.retry_after is not None:
        return failed.retry_after
    return deps.retry.delay(job_try)


async def _attempt_failed(deps: Deps, reference: str, found: Referral, failed: PrimeroFailed,
                          attempt: int, job_try: int) -> str:
    if not failed.retry:
        return await _failed(deps, reference, found, failed.reason, attempt, failed.status)
    if deps.retry.gives_up(job_try):
        if failed.status is None and await _went_all_the_same(deps, reference, found, attempt):
            return str(ReferralStatus.SENT)
        return await _failed(deps, reference, found,
                             f"{failed.reason}; gave up after {attempt} tries", attempt,
                             failed.status)
    delay = _delay(deps, failed, job_try)
    log.warning("referral %s of %s: attempt %d failed (%s); again in %.1fs", found.id,
                typed_id("case", reference), attempt, failed.status or "no answer", delay)
    await referrals.record_outcome(
        deps.redis, reference=reference, referral_id=found.id, now=deps.clock(),
        changes={"error": failed.reason, "attempts": attempt}, from_statuses=PENDING,
        action=ATTEMPT_FAILED_ACTION,
        detail={"error": failed.reason, "attempt": attempt, "retry_in_seconds": delay})
    raise RetryLater(delay)


async def _went_all_the_same(deps: Deps, reference: str, found: Referral,
                             attempt: int) -> bool:
    """The last try had no answer (a timeout, a lost connection): it may have gone through.
    Before giving up, ask Primero for the case under our id; found, the referral went."""
    assert deps.primero is not None
    try:
        number = await deps.primero.case_number(
            primero_case_id(reference, deps.settings.org_name), reference=reference)
    except PrimeroFailed:
        return False  # not there (404), or still no answer: it failed, as it seems
    await _sent(deps, reference, found, number, attempt, existed=True)
    return True


async def _failed(deps: Deps, reference: str, found: Referral, reason: str, attempt: int,
                  status: int | None = None) -> str:
    # Primero's words may name fields, never values; still, the log gets only the status.
    log.warning("referral %s of %s failed (%s)", found.id, typed_id("case", reference),
                status or "not sent")
    await referrals.record_outcome(
        deps.redis, reference=reference, referral_id=found.id, now=deps.clock(),
        changes={"status": ReferralStatus.FAILED, "error": reason, "attempts": attempt},
        from_statuses=PENDING, action=FAILED_ACTION,
        detail={"error": reason, "attempt": attempt})
    return str(ReferralStatus.FAILED)
