"""Turns the outbox of case creation into jobs, every worker cycle.

Each event becomes jobs queued once (deterministic job ids): the
confirmation SMS of a case made over USSD, and the on-call notice of an urgent
case; a referral's event, its hand-off to the partner. Only then is the event
acknowledged, so a worker dying in between leaves it to another worker
(XAUTOCLAIM), which queues nothing twice.
"""

from __future__ import annotations

from typing import Any

from bot.cases.model import Priority
from bot.jobs.deps import deps_of, queue_of
from bot.jobs.messages import SEND_CONFIRMATION, confirmation_id
from bot.jobs.oncall import NOTIFY_ONCALL, URGENT, notice_job_id
from bot.jobs.referrals import REFER_CASE, referral_job_id
from bot.store import outbox
from bot.store.outbox import OutboxEvent
from bot.types import Channel

PUMP_OUTBOX = "pump_outbox"
SPOKEN_OR_SHOWN_ONCE = frozenset({Channel.USSD, Channel.VOICE})
"""Channels whose screen with the reference is gone: the reference also goes by SMS."""


def jobs_for(event: OutboxEvent) -> list[tuple[str, tuple[str, ...], str]]:
    """(function, arguments, job id) of each job an event asks for."""
    jobs: list[tuple[str, tuple[str, ...], str]] = []
    if event.referral:  # a referral of a case made earlier: only its hand-off
        return [(REFER_CASE, (event.reference, event.referral), referral_job_id(event.referral))]
    if event.channel in SPOKEN_OR_SHOWN_ONCE:
        jobs.append((SEND_CONFIRMATION, (event.reference,), confirmation_id(event.reference)))
    if event.priority is Priority.URGENT:
        jobs.append((NOTIFY_ONCALL, (event.reference, URGENT),
                     notice_job_id(event.reference, URGENT)))
    return jobs


async def pump_outbox(ctx: dict[str, Any]) -> int:
    """Queue the jobs of every waiting outbox event; return how many events were handled."""
    deps = deps_of(ctx)
    queue = queue_of(ctx)
    handled = 0
    while True:
        batch = await outbox.read_events(deps.redis, consumer=deps.consumer)
        if not batch.entry_ids:
            return handled
        for event in batch.events:
            for function, args, job_id in jobs_for(event):
                await queue.enqueue(function, *args, job_id=job_id)
        await outbox.acknowledge(deps.redis, batch.entry_ids)
        handled += len(batch.entry_ids)
