"""One alert to one recipient: by SMS, or on WhatsApp for a subscription made there.

WhatsApp takes a free-form message only within 24 hours of the subscriber's last
message; outside them, only a template: the alert goes as the Content template of
`HELPLINE_WHATSAPP_ALERT_TEMPLATE` for its language (`ContentSid`, the alert's
text as variable `1` in `ContentVariables`). With no template for the language,
or when Twilio refuses it with 63016 (at once, or later in a status report), the
alert goes by SMS to the same number instead: `send_alert_fallback` sends that
SMS, once, for a report that came after the send.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bot.jobs.delivery import NOT_CONFIGURED
from bot.jobs.deps import Deps, SmsGateway, deps_of, job_identity
from bot.jobs.errors import Failure, SendFailed
from bot.jobs.pace import Lane, PacedSms
from bot.jobs.queue import RetryLater
from bot.jobs.twilio_rest import OPTED_OUT_CODE, WHATSAPP
from bot.outreach.broadcasts import (
    BROADCAST_PARAMETER,
    WHATSAPP_WINDOW_CODE,
    BroadcastStatus,
    recipient_tag,
    sms_text,
)
from bot.outreach.subscriptions import AlertChannel
from bot.store import broadcasts as store
from bot.store import deliveries
from bot.store import subscriptions as subscription_store

log = logging.getLogger(__name__)

WHATSAPP_WINDOW_SECONDS = 24 * 3600

MayGo = Callable[[], Awaitable[bool]]
"""Waits for the message's slot in the pace; False when it may not go any more."""


class WhatsAppGateway(Protocol):
    async def send_whatsapp(self, *, to: str, body: str, content_sid: str | None,
                            status_callback: str | None) -> str: ...


def raw_gateway(deps: Deps) -> SmsGateway | None:
    """Twilio without the priority lane: an alert waits in the bulk lane itself."""
    sms = deps.sms
    return sms.gateway if isinstance(sms, PacedSms) else sms


@dataclass(frozen=True)
class Alert:
    pseudonym: str
    phone: str
    language: str
    channel: str
    text: str
    """The broadcast's text in the recipient's language, as written."""
    claimed_at: datetime
    callback: str | None


def status_callback(deps: Deps, broadcast_id: str, shard: int, pseudonym: str) -> str | None:
    """Where Twilio reports on one recipient's alert (`?bc=` names the recipient)."""
    base = deps.status_callback()
    if base is None:
        return None
    return f"{base}?{BROADCAST_PARAMETER}={recipient_tag(broadcast_id, shard, pseudonym)}"


async def within_whatsapp_window(deps: Deps, pseudonym: str) -> bool:
    """Whether the phone wrote to us within WhatsApp's 24 hours (its SMS-channel receipts,
    written with each message, expire `HELPLINE_SMS_TTL` after it)."""
    expiry = await store.last_sms_expiry(deps.redis, pseudonym)
    if expiry is None:
        return False
    return time.time() - (expiry - deps.settings.sms_ttl) < WHATSAPP_WINDOW_SECONDS


async def deliver_alert(deps: Deps, alert: Alert, *, uncertain: bool, may_go: MayGo) -> str:
    """Send one alert, at most once. Its outcome: `s` (by SMS), `w` (on WhatsApp), `f`
    (refused for good), or '' when it may not go any more (cancelled). Raises SendFailed
    when it must be tried again (nothing refused for good)."""
    gateway = raw_gateway(deps)
    if gateway is None:
        log.warning("alert not sent: %s", NOT_CONFIGURED)
        return "f"
    whatsapp: WhatsAppGateway | None = None
    template: str | None = None
    if alert.channel == AlertChannel.WHATSAPP and hasattr(gateway, "send_whatsapp"):
        whatsapp = gateway  # type: ignore[assignment]
        if not await within_whatsapp_window(deps, alert.pseudonym):
            template = deps.settings.whatsapp_templates().get(alert.language)
            if template is None:
                whatsapp = None  # outside the window with no template: by SMS
    sms_body = sms_text(deps.flow, alert.language, alert.text)
    try:
        if uncertain:
            for to, body, letter in ((f"{WHATSAPP}{alert.phone}", alert.text, "w"),
                                     (alert.phone, sms_body, "s")):
                if (letter == "s" or whatsapp is not None) and await gateway.find_sent(
                        to=to, body=body, since=alert.claimed_at):
                    log.info("an alert had gone out already")
                    return letter
        if not await may_go():
            return ""
        if whatsapp is not None:
            try:
                await whatsapp.send_whatsapp(to=alert.phone, body=alert.text,
                                             content_sid=template,
                                             status_callback=alert.callback)
                return "w"
            except SendFailed as failed:
                if str(failed.code) != WHATSAPP_WINDOW_CODE:
                    raise
                log.info("WhatsApp refused an alert (63016): sent by SMS")
                if not await may_go():
                    return ""
        await gateway.send(to=alert.phone, body=sms_body, status_callback=alert.callback)
        return "s"
    except SendFailed as failed:
        if failed.failure is not Failure.PERMANENT:
            raise
        log.warning("an alert was refused: %s", failed.reason)
        if failed.code == OPTED_OUT_CODE:
            await deliveries.mark_opted_out(deps.redis, alert.pseudonym)  # ends it too
        return "f"


async def send_alert_fallback(ctx: dict[str, Any], broadcast_id: str, shard: int | str,
                              pseudonym: str) -> str:
    """The SMS replacing a WhatsApp alert Twilio reported refused (63016), once."""
    deps = deps_of(ctx)
    job_id, job_try = job_identity(ctx)
    shard = int(shard)
    claim, since = await store.claim_fallback(deps.redis, broadcast_id, shard, pseudonym,
                                              job_id=job_id, job_try=job_try)
    if claim in ("busy", "done"):
        return claim
    found = await store.read(deps.redis, broadcast_id)
    subscription = await subscription_store.subscription_of(deps.redis, pseudonym=pseudonym)
    letter = "f"
    if found is not None and subscription is not None and (
            found.status is not BroadcastStatus.CANCELLED):
        text = found.texts.get(subscription.language)
        if text is not None:
            pace = deps.pace

            async def may_go() -> bool:
                if pace is not None:
                    await pace.wait(Lane.BULK)
                return True

            alert = Alert(pseudonym, subscription.phone, subscription.language,
                          AlertChannel.SMS, text, since or deps.clock(),
                          callback=status_callback(deps, broadcast_id, shard, pseudonym))
            try:
                letter = await deliver_alert(deps, alert, uncertain=claim == "uncertain",
                                             may_go=may_go) or "f"
            except SendFailed as failed:
                log.warning("alert fallback: attempt failed (%s)", failed.reason)
                raise RetryLater(deps.retry.delay(job_try)) from failed
    await store.record_outcome(deps.redis, broadcast_id, shard, pseudonym, what="sent",
                               letter=letter)
    return f"fallback {letter}"
