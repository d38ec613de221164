"""Follow-up check-ins, the worker's side (docs/spec.md §11): what comes due, and sending it.

Each second (`tick`, in every worker's schedule): the check-ins of cases returned
since the last look are scheduled and those of cases withdrawn or erased are
cancelled (from the audit streams, `bot.cases.followups.sync_from_audit`); then
every check-in due gets a job queued under its own id (`followup:<ref>:<id>`),
and only then is it marked queued, so a worker killed in between queues it again
(the same id: once) and skips none. Sent check-ins past `HELPLINE_FOLLOWUP_TTL`
without an answer become `expired`.

A job (`send_followup`) checks the case as it is then (withdrawn, erased, consent,
STOP, SMS safety), opens the survey in the phone's SMS conversation and sends its
first question, or places a call whose answers come back to the voice webhook.
It goes out as one delivery (`bot.jobs.delivery`): a run killed mid-send looks
before sending again, so nobody gets a check-in twice.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from bot.cases import followups
from bot.cases.followups import CancelReason
from bot.conversation import Conversation, InboundMessage
from bot.engine.session import Opening
from bot.engine.survey import FOLLOWUP_ANSWER
from bot.errors import CaseNotFound
from bot.jobs.delivery import Delivery, Done, Result, SmsTransport, Transport, deliver
from bot.jobs.deps import CallGateway, Deps, deps_of, job_identity, queue_of
from bot.jobs.errors import Failure, SendFailed
from bot.jobs.messages import finished
from bot.jobs.pace import Lane
from bot.store import deliveries
from bot.store import followups as store
from bot.store.cases import iso, read_case
from bot.store.deliveries import FINISHED, DeliveryState, Purpose
from bot.types import Channel

log = logging.getLogger(__name__)

SEND_FOLLOWUP = "send_followup"
VOICE_PATH = "/webhooks/twilio/voice"  # as bot.channels.twilio_voice.VOICE_PATH
FOLLOWUP_PARAMETER = "followup"
"""The voice webhook's query parameter naming the check-in a call we placed asks."""
LANGUAGE_PARAMETER = "lang"
NOT_DELIVERED = "not_delivered"


def followup_id(reference: str, number: int) -> str:
    """The job and delivery id of one check-in."""
    return followups.delivery_id(reference, number)


async def tick(ctx: dict[str, Any]) -> int:
    """Sync from the audit, queue what is due, expire what went unanswered; jobs queued.

    A check-in due in the quiet hours (`HELPLINE_QUIET_HOURS`) waits for them to end: a
    phone that rings or buzzes at night wakes the household, the people a returnee may
    least want to know about the helpline (a check-in is due at the time of day the
    return was recorded, an operator's "now" at once)."""
    deps = deps_of(ctx)
    queue = queue_of(ctx)
    settings = deps.settings
    now = deps.clock()
    ttl = settings.followup_ttl
    await followups.sync_from_audit(deps.redis, days=settings.followup_day_list, ttl=ttl,
                                    now=now)
    epoch = int(now.timestamp())
    quiet = settings.quiet()
    waiting = quiet is not None and quiet.ends_after(now) is not None
    queued = 0
    for due in await store.due(deps.redis, now=epoch, ttl=ttl):
        sends = () if waiting else due.send
        for number in sends:
            queued += await queue.enqueue(SEND_FOLLOWUP, due.reference, number,
                                          job_id=followup_id(due.reference, number))
        if sends:
            await store.mark(deps.redis, reference=due.reference,
                             ids=" ".join(map(str, sends)), sources="s", target="q",
                             now=epoch, ttl=ttl)
        if due.expire:
            await store.mark(deps.redis, reference=due.reference,
                             ids=" ".join(map(str, due.expire)), sources="t", target="x",
                             now=epoch, ttl=ttl, actor=followups.WORKER,
                             action=followups.EXPIRED, at=iso(now),
                             detail=json.dumps({"reason": "no_answer"}))
    return queued


@dataclass
class CallTransport:
    """A call we place: `find_sent` lists those placed to the number since then."""

    gateway: CallGateway | None
    to: str
    url: str
    status_callback: str | None = None
    kind: str = "call"

    async def send(self) -> str:
        if self.gateway is None:
            raise SendFailed(Failure.PERMANENT, "calls_not_configured")
        if not self.url:
            raise SendFailed(Failure.PERMANENT, "public_url_not_set")
        return await self.gateway.call(to=self.to, url=self.url,
                                       status_callback=self.status_callback)

    async def find_sent(self, since: Any) -> list[str]:
        if self.gateway is None:
            return []
        return await self.gateway.find_placed(to=self.to, since=since)


def voice_url(deps: Deps, token: str, language: str) -> str:
    """Where Twilio asks what to say once the migrant answers our call (signed like any
    request to the voice webhook)."""
    base = (deps.settings.public_url or "").rstrip("/")
    if not base:
        return ""
    query = urlencode({FOLLOWUP_PARAMETER: token, LANGUAGE_PARAMETER: language})
    return f"{base}{VOICE_PATH}?{query}"


def call_status_url(deps: Deps, token: str) -> str | None:
    """Where Twilio tells how a check-in call ended: one nobody took (busy, no answer) ends
    the check-in and calls again once (`bot.cases.followups.call_unanswered`)."""
    base = deps.status_callback()
    return None if base is None else f"{base}?{urlencode({FOLLOWUP_PARAMETER: token})}"


async def _first_question(deps: Deps, *, phone: str, language: str, token: str,
                          message_id: str) -> str:
    """Open the survey in the phone's SMS conversation; the screen to send. The migrant's
    replies then come through the SMS webhook like any message."""
    compiled = deps.compiled
    assert compiled is not None and compiled.flow.followup is not None  # send_followup checks
    conversation = Conversation(redis=deps.redis, compiled=compiled, settings=deps.settings)
    try:
        reply = await conversation.handle(InboundMessage(
            Channel.SMS, phone, "", restart=True, message_id=message_id,
            opening=Opening(compiled.flow.followup, language, {FOLLOWUP_ANSWER: token})))
    finally:
        await conversation.aclose()
    return reply.text


async def _send(deps: Deps, delivery: Delivery, transport: Transport, *, job_id: str,
                job_try: int) -> Result:
    """The one place a check-in goes out (SMS or call): the outbound pace goes here. An SMS
    waits for its slot in `deps.sms` (`PacedSms`); a call takes one here, in the priority
    lane too (docs/outreach.md, "The pace")."""
    if transport.kind == CallTransport.kind and deps.pace is not None:
        await deps.pace.wait(Lane.PRIORITY)
    return await deliver(deps, delivery, transport, job_id=job_id, job_try=job_try)


async def send_followup(ctx: dict[str, Any], reference: str, number: int) -> str:
    """Send one check-in (its survey's first question, or the call), once."""
    deps = deps_of(ctx)
    job_id, job_try = job_identity(ctx)
    now = deps.clock()
    ttl = deps.settings.followup_ttl
    record = await store.read(deps.redis, reference)
    entry = next((e for e in record.entries if e.id == int(number)), None) if record else None
    if entry is None:
        return "no such check-in"
    if entry.status not in followups.NOT_SENT:
        return f"not due any more ({entry.status})"
    try:
        case = await read_case(deps.redis, reference)
    except CaseNotFound:
        return "no such case"
    recipient = await deliveries.recipient(deps.redis, reference)
    opted_out = recipient is not None and recipient.opted_out
    channel = followups.view(entry).channel
    refused = followups.why_not(case, channel, opted_out=opted_out)
    if refused is not None or case.phone is None:
        reason = refused or CancelReason.ERASED
        # SMS not safe concerns this check-in's channel; the others end every check-in.
        ids = str(entry.id) if reason is CancelReason.SMS_NOT_SAFE else "*"
        await followups.cancel(deps.redis, reference=reference, reason=reason, ttl=ttl,
                               actor=followups.WORKER, now=now, ids=ids)
        return f"cancelled ({reason})"
    if deps.compiled is None or deps.compiled.flow.followup is None:
        log.error("the flow has no follow-up survey (`followup:`): check-in not sent")
        await store.mark(deps.redis, reference=reference, ids=str(entry.id),
                         sources=followups.NOT_SENT, target="x", now=int(now.timestamp()),
                         ttl=ttl, actor=followups.WORKER, action=followups.EXPIRED,
                         at=iso(now), detail=json.dumps({"reason": "no_survey_in_flow"}))
        return "no survey in the flow"
    delivery_id = followup_id(reference, entry.id)
    delivery = Delivery(delivery_id=delivery_id, reference=reference, purpose=Purpose.FOLLOWUP,
                        detail={"purpose": str(Purpose.FOLLOWUP), "followup": entry.id,
                                "channel": str(channel)},
                        phone_pseudonym=recipient.phone_pseudonym if recipient else "")
    token = followups.token(reference, entry.id)
    language = case.language or deps.flow.default_language
    transport: Transport
    if channel is Channel.SMS:
        state = (await deliveries.state_of(deps.redis, delivery_id)).get("state", "")
        text = "" if state in FINISHED else await _first_question(
            deps, phone=case.phone, language=language, token=token, message_id=delivery_id)
        transport = SmsTransport(deps.sms, case.phone, text, deps.status_callback())
    else:
        transport = CallTransport(deps.calls, case.phone, voice_url(deps, token, language),
                                  call_status_url(deps, token))
    result = await _send(deps, delivery, transport, job_id=job_id, job_try=job_try)
    if isinstance(result, Done):
        epoch = int(deps.clock().timestamp())
        if result.state == DeliveryState.SENT:
            await store.mark(deps.redis, reference=reference, ids=str(entry.id),
                             sources=followups.NOT_SENT, target="t", now=epoch, ttl=ttl)
        else:
            await store.mark(deps.redis, reference=reference, ids=str(entry.id),
                             sources=followups.NOT_SENT, target="x", now=epoch, ttl=ttl,
                             actor=followups.WORKER, action=followups.EXPIRED, at=iso(now),
                             detail=json.dumps({"reason": NOT_DELIVERED}))
    return finished(result)
