"""SMS to migrants: the confirmation after a USSD request, and operators' messages.

Both are skipped, and audited as skipped, when the phone opted out, when the
migrant said SMS to this phone is not safe, or when the case was erased: the
job reads all of it when it runs, not when it was queued.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.engine.render import fill
from bot.engine.spelling import spelled
from bot.jobs.delivery import Delivery, Result, SmsTransport, TryAgain, deliver
from bot.jobs.deps import deps_of, job_identity
from bot.jobs.queue import RetryLater
from bot.store import deliveries
from bot.store.deliveries import Purpose, Recipient
from bot.types import Channel

log = logging.getLogger(__name__)

SEND_CONFIRMATION = "send_confirmation"
CONFIRMATION_TEXT = "confirmation"
YES, NO = "yes", "no"


def finished(result: Result) -> str:
    """The job's result; the job runs again later when the delivery must be tried again."""
    if isinstance(result, TryAgain):
        raise RetryLater(result.after_seconds)
    return result.state


def confirmation_skip_reason(found: Recipient) -> str | None:
    """Why no confirmation SMS may go to this migrant, if it may not."""
    if found.phone is None:
        return "erased"
    if found.opted_out:
        return "opted_out"
    if found.sms_safe == NO:
        return "sms_not_safe"
    if found.sms_safe != YES:
        return "sms_safety_not_asked"
    return None


def message_skip_reason(found: Recipient) -> str | None:
    """Why an operator's message may no longer go (the API checked when it was queued)."""
    if found.phone is None:
        return "erased"
    if found.opted_out:
        return "opted_out"
    if found.sms_safe == NO:
        return "sms_not_safe"
    return None


def confirmation_id(reference: str) -> str:
    return f"{Purpose.CONFIRMATION}:{reference}"


def message_id(reference: str, entry_id: str) -> str:
    return f"{Purpose.MESSAGE}:{reference}:{entry_id}"


async def send_confirmation(ctx: dict[str, Any], reference: str) -> str:
    """SMS the reference of a case made over USSD or a call (the screen showing it is gone)."""
    deps = deps_of(ctx)
    job_id, job_try = job_identity(ctx)
    found = await deliveries.recipient(deps.redis, reference)
    if found is None:
        return "no such case"
    if found.channel not in (Channel.USSD, Channel.VOICE):
        return "not made over USSD or a call"
    skip = confirmation_skip_reason(found)
    language = found.language or deps.flow.default_language
    body = "" if skip else spelled(deps.flow, language, Channel.SMS, fill(
        deps.flow, deps.flow.text(CONFIRMATION_TEXT, language), language,
        {"reference": reference}, {}))
    result = await deliver(
        deps,
        Delivery(delivery_id=confirmation_id(reference), reference=reference,
                 purpose=Purpose.CONFIRMATION, detail={"purpose": str(Purpose.CONFIRMATION)},
                 phone_pseudonym=found.phone_pseudonym),
        SmsTransport(deps.sms, found.phone or "", body, deps.status_callback()),
        job_id=job_id, job_try=job_try, skip_reason=skip,
    )
    return finished(result)


async def send_case_message(ctx: dict[str, Any], reference: str, entry_id: str) -> str:
    """SMS an operator's message (a journal entry of kind `message`) to the migrant."""
    deps = deps_of(ctx)
    job_id, job_try = job_identity(ctx)
    found = await deliveries.recipient(deps.redis, reference)
    if found is None:
        return "no such case"
    entry = await deliveries.journal_entry(deps.redis, reference, entry_id)
    skip = message_skip_reason(found) or (None if entry is not None else "erased")
    result = await deliver(
        deps,
        Delivery(delivery_id=message_id(reference, entry_id), reference=reference,
                 purpose=Purpose.MESSAGE,
                 detail={"purpose": str(Purpose.MESSAGE), "entry": entry_id},
                 phone_pseudonym=found.phone_pseudonym),
        SmsTransport(deps.sms, found.phone or "", entry.text if entry else "",
                     deps.status_callback()),
        job_id=job_id, job_try=job_try, skip_reason=skip,
    )
    return finished(result)
