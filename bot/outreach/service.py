"""Outreach's rules applied to the store, for the parts of the app that are no worker job:
a Twilio status report about an alert (the status webhook reaches storage only through a
service, as for cases)."""

from __future__ import annotations

from typing import Any

from bot.cases.jobs import CaseJobs
from bot.outreach.broadcasts import SEND_ALERT_FALLBACK, parse_recipient_tag, status_letter
from bot.store import broadcasts as store


async def record_alert_status(redis: Any, jobs: CaseJobs | None, *, tag: str, status: str,
                              error_code: str) -> str:
    """Note Twilio's report for the recipient `tag` names (`<id>.<shard>.<pseudonym>`, the
    status callback's `bc`); a WhatsApp alert refused outside its window (63016) is queued
    to go again by SMS. Returns the recipient's new state ('' when nothing changed, 'r'
    for that SMS), or 'unknown' for a malformed tag."""
    parsed = parse_recipient_tag(tag)
    if parsed is None:
        return "unknown"
    letter = status_letter(status, error_code)
    if letter is None:
        return ""
    broadcast_id, shard, pseudonym = parsed
    new = await store.record_outcome(redis, broadcast_id, shard, pseudonym, what="status",
                                     letter=letter)
    if new == "r" and jobs is not None:
        await jobs.enqueue(SEND_ALERT_FALLBACK, broadcast_id, shard, pseudonym)
    return new
