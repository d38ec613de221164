"""Twilio status callbacks, recorded against the deliveries the worker made.

The route itself (`POST /webhooks/twilio/status`, signed like the SMS webhook,
answered 204) is the gateway's (bot.channels.routes); it hands each status to
`Webhooks.delivery`, which the app sets to the recorder below. A status lands
on the delivery's record and, once per status, in the case's audit trail,
through the case service (bot.cases.service: a gateway reaches storage only
through the conversation loop or a service). A status about an alert (its
callback URL names the recipient, `?bc=`) counts on the broadcast instead
(bot.outreach.service). A check-in call we placed that nobody took (its callback URL
names the check-in, `?followup=`) ends that check-in and may call again
(bot.cases.followups.call_unanswered).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from redis.asyncio import Redis

from bot.cases import followups
from bot.cases import service as case_service
from bot.cases.jobs import CaseJobs
from bot.channels.twilio_sms import DeliveryStatus
from bot.outreach import service as outreach

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def delivery_recorder(
    redis: Redis, *, followup_ttl: int, clock: Callable[[], datetime] = utcnow,
    jobs: CaseJobs | None = None,
) -> Callable[[DeliveryStatus], Awaitable[None]]:
    """The sink of the status webhook: record the status; a 21610 marks the phone opted out;
    a check-in call nobody took expires (`followup_ttl`: HELPLINE_FOLLOWUP_TTL) and may be
    placed again."""

    async def record(status: DeliveryStatus) -> None:
        if status.followup:
            await followups.call_unanswered(redis, followup=status.followup,
                                            why=followups.Unanswered(status.status),
                                            now=clock(), ttl=followup_ttl)
            return
        if status.alert:
            await outreach.record_alert_status(redis, jobs, tag=status.alert,
                                               status=status.status,
                                               error_code=status.error_code)
            return
        known = await case_service.record_delivery_status(
            redis, message_sid=status.message_sid, status=status.status,
            error_code=status.error_code, now=clock(), followup_ttl=followup_ttl,
        )
        if not known:
            log.info("status of a message we have no record of",
                     extra={"message_sid": status.message_sid, "delivery": status.status})

    return record

