"""On-call notices: urgent cases, escalations, and urgent cases left unacknowledged.

Each notice goes as an SMS to every `HELPLINE_ONCALL_NUMBERS` entry and/or as a
JSON POST to `HELPLINE_ESCALATION_WEBHOOK`, with the reference, kind, priority
and a link to the console — never personal data. One delivery per recipient
and notice, so a retry resends only what did not go.

SLA: an urgent case is *acknowledged* once its status moved past `new` or an
assignee is set (bot.cases.service.acknowledged). Until then, every full `HELPLINE_ACK_SLA_MINUTES`
since its creation brings one reminder (`sla-1`, `sla-2`…); a worker that was
down for several periods sends only the current one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot import privacy
from bot.cases import service as case_service
from bot.cases.jobs import NOTIFY_ESCALATION
from bot.cases.references import format_reference
from bot.jobs.delivery import (
    Delivery,
    Done,
    Result,
    SmsTransport,
    TryAgain,
    WebhookTransport,
    deliver,
)
from bot.jobs.deps import Deps, deps_of, job_identity, queue_of
from bot.jobs.queue import RetryLater
from bot.observability import typed_id
from bot.settings import Settings
from bot.store import keys
from bot.store.cases import text_of
from bot.store.deliveries import Purpose

log = logging.getLogger(__name__)

NOTIFY_ONCALL = "notify_oncall"
CHECK_ACK_SLA = "check_ack_sla"
URGENT = "urgent"
ESCALATED = "escalated"
SLA = "sla"

_SMS = {
    URGENT: "Helpline: new urgent case {reference} ({kind}). {link}",
    ESCALATED: "Helpline: case {reference} escalated to level {level} ({kind}, {priority}). "
    "{link}",
    SLA: "Helpline: urgent case {reference} ({kind}) not taken after {minutes} min. {link}",
}
__all__ = ["NOTIFY_ESCALATION", "NOTIFY_ONCALL", "check_ack_sla", "notify_escalation",
           "notify_oncall"]


def oncall_numbers(settings: Settings) -> list[str]:
    """`HELPLINE_ONCALL_NUMBERS` (comma-separated) in E.164; bad entries dropped (logged)."""
    found = []
    for raw in re.split(r"[,;]", settings.oncall_numbers):
        if not raw.strip():
            continue
        number = privacy.normalise_phone(raw, settings.default_region)
        if number is None:
            log.error("HELPLINE_ONCALL_NUMBERS has an invalid entry (skipped)")
        elif number not in found:
            found.append(number)
    return found


@dataclass(frozen=True)
class Notice:
    reference: str
    event: str
    """`urgent`, `escalated-<level>` or `sla-<period>`: one notice per event and case."""
    kind: str
    priority: str
    level: int
    elapsed_minutes: int

    @property
    def family(self) -> str:
        return self.event.partition("-")[0]

    def payload(self, link: str) -> dict[str, object]:
        return {
            "event": self.family,
            "notice": self.event,
            "reference": self.reference,
            "kind": self.kind,
            "priority": self.priority,
            "escalation_level": self.level,
            "link": link,
        }

    def sms(self, link: str, sla_minutes: int) -> str:
        return _SMS[self.family].format(
            reference=format_reference(self.reference), kind=self.kind,
            priority=self.priority, level=self.level, minutes=sla_minutes, link=link,
        )


async def _notice(deps: Deps, reference: str, event: str) -> Notice | None:
    kind, priority, level, created_at = await deps.redis.hmget(
        keys.case(reference), ["kind", "priority", "escalation_level", "created_at"]
    )
    if kind is None:
        return None
    created = datetime.fromisoformat(text_of(created_at)) if created_at else deps.clock()
    return Notice(
        reference=reference, event=event, kind=text_of(kind), priority=text_of(priority),
        level=int(text_of(level or "0")),
        elapsed_minutes=int((deps.clock() - created).total_seconds() // 60),
    )


def _retry_if_needed(results: Sequence[Result]) -> str:
    waits = [r.after_seconds for r in results if isinstance(r, TryAgain)]
    if waits:
        raise RetryLater(min(waits))
    return ",".join(sorted({r.state for r in results if isinstance(r, Done)})) or "nobody to notify"


async def _notify(ctx: dict[str, Any], reference: str, event: str) -> str:
    deps = deps_of(ctx)
    job_id, job_try = job_identity(ctx)
    notice = await _notice(deps, reference, event)
    if notice is None:
        return "no such case"
    if notice.family == SLA and not await case_service.still_unacknowledged(deps.redis,
                                                                             reference):
        return "acknowledged"
    link = deps.console_link(reference)
    key = privacy.pii_key(deps.settings)
    base_id = f"oncall:{reference}:{event}"
    results: list[Result] = []
    for number in oncall_numbers(deps.settings):
        who = privacy.pseudonym(number, key)[:12]
        results.append(await deliver(
            deps,
            Delivery(delivery_id=f"{base_id}:sms:{who}", reference=reference,
                     purpose=Purpose.ONCALL_SMS,
                     detail={"purpose": str(Purpose.ONCALL_SMS), "notice": event,
                             "to": f"oncall:{who}"}),
            SmsTransport(deps.sms, number, notice.sms(link, deps.settings.ack_sla_minutes),
                         deps.status_callback()),
            job_id=job_id, job_try=job_try,
        ))
    if deps.settings.escalation_webhook:
        webhook_id = f"{base_id}:webhook"
        results.append(await deliver(
            deps,
            Delivery(delivery_id=webhook_id, reference=reference,
                     purpose=Purpose.ONCALL_WEBHOOK,
                     detail={"purpose": str(Purpose.ONCALL_WEBHOOK), "notice": event}),
            WebhookTransport(deps.http, deps.settings.escalation_webhook,
                             notice.payload(link), idempotency_key=webhook_id),
            job_id=job_id, job_try=job_try,
        ))
    if not results:
        log.warning("no on-call number or escalation webhook configured; notice %s of %s "
                    "dropped", event, typed_id("case", reference))
    return _retry_if_needed(results)


async def notify_oncall(ctx: dict[str, Any], reference: str, event: str) -> str:
    """Tell on-call about an urgent case (`urgent`) or a missed SLA (`sla-<n>`)."""
    return await _notify(ctx, reference, event)


async def notify_escalation(ctx: dict[str, Any], reference: str, level: int) -> str:
    """Tell on-call that an operator escalated a case (queued by the admin API)."""
    return await _notify(ctx, reference, f"{ESCALATED}-{int(level)}")


def sla_period(created_at: datetime, now: datetime, sla_minutes: int) -> int:
    """How many full SLA periods have passed since `created_at` (0 within the first)."""
    return max(0, int((now - created_at).total_seconds() // (sla_minutes * 60)))


def notice_job_id(reference: str, event: str) -> str:
    return f"oncall:{reference}:{event}"


async def check_ack_sla(ctx: dict[str, Any]) -> int:
    """Queue one reminder per unacknowledged urgent case and elapsed SLA period."""
    deps = deps_of(ctx)
    now = deps.clock()
    queued = 0
    for case in await case_service.unacknowledged_urgent(deps.redis):
        period = sla_period(case.created_at, now, deps.settings.ack_sla_minutes)
        if period < 1:
            continue
        event = f"{SLA}-{period}"
        queued += await queue_of(ctx).enqueue(
            NOTIFY_ONCALL, case.reference, event, job_id=notice_job_id(case.reference, event)
        )
    return queued
